"""Every committed stack's config through the real CLI's checks and then the program's settings."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.engine.conftest import FACTS, IMAGE, REPO, Runner, checkout, engine

ENVS = ["dev", "staging", "prod"]
SETTINGS_ONLY = Path(__file__).parent / "programs" / "settings_only.py"


@pytest.fixture(scope="module")
def runner(new_runner: Callable[..., Runner], tmp_path_factory: pytest.TempPathFactory) -> Runner:
    state = tmp_path_factory.mktemp("state")
    return new_runner(PULUMI_BACKEND_URL=f"file://{state}", PULUMI_CONFIG_PASSPHRASE="engine-tests")


def settings_of(runner: Runner, tree: Path, env: str, *config: str) -> tuple[int, str, dict]:
    """`up` of the settings-only program on `env`, then the settings it exported (empty on failure)."""
    args = ["--create", "--secrets-provider", "passphrase", "--program", str(SETTINGS_ONLY)]
    result = engine(runner, tree, "up", env, *args, *(f"--config={c}" for c in config))
    if result.code:
        return result.code, result.output, {}
    outputs = subprocess.run(
        ["pulumi", "stack", "output", "settings", "--json", "--stack", env],
        cwd=tree, env=runner.env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return 0, result.output, json.loads(outputs.stdout)


def edit_stack(tree: Path, env: str, **values: object) -> None:
    path = tree / "environments" / f"Pulumi.{env}.yaml"
    data = yaml.safe_load(path.read_text())
    data["config"].update({f"twinserve:{k}": v for k, v in values.items()})
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.parametrize("env", ENVS)
def test_each_committed_stack_plus_the_image(runner: Runner, tmp_path: Path, env: str) -> None:
    tree = checkout(tmp_path)
    code, output, settings = settings_of(runner, tree, env, f"image={IMAGE}")
    assert code == 0, output
    committed = yaml.safe_load((REPO / "environments" / f"Pulumi.{env}.yaml").read_text())["config"]
    for key, value in committed.items():
        if key.startswith("twinserve:") and key != "twinserve:image":
            assert settings[key.split(":", 1)[1]] == value, key
    assert settings["image"] == IMAGE
    assert settings["runtimes"] == ["kubernetes", "lambda"]
    FACTS.append(f"config: stack {env} as committed (+ image) passed the CLI's checks and the program's")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"kubernetesMinReplicas": "many"},
            "Stack 'dev' with configuration key 'kubernetesMinReplicas' must be of type 'integer'",
        ),
        (
            {"runtimes": '["kubernetes"]'},  # set without --path: a string, not a list
            "Stack 'dev' with configuration key 'runtimes' must be of type 'array<string>'",
        ),
        ({"kubernetesMinReplica": 2}, "unknown setting(s) ['twinserve:kubernetesMinReplica']"),
        (
            {"kubeconfig": "apiVersion: v1"},
            "twinserve:kubeconfig is stored in plaintext; set it with `pulumi config set --secret kubeconfig",
        ),
        (
            {"kubernetesMinReplicas": 5, "kubernetesMaxReplicas": 2},
            "kubernetesMinReplicas must not exceed kubernetesMaxReplicas",
        ),
    ],
)
def test_a_wrong_value_stops_the_preview_naming_the_key(
    runner: Runner, tmp_path: Path, values: dict[str, object], message: str
) -> None:
    tree = checkout(tmp_path)
    edit_stack(tree, "dev", **values)
    code, output, _ = settings_of(runner, tree, "dev", f"image={IMAGE}")
    assert code != 0
    assert message in output
    assert "Traceback" not in output


def test_capture_turned_on_as_a_fork_writes_it_passes_the_cli_and_the_program(
    runner: Runner, tmp_path: Path
) -> None:
    """YAML's own types in the stack file (a float, a list, an integer, a boolean), as the README shows
    them."""
    tree = checkout(tmp_path)
    capture = {"captureSampleRate": 0.1, "captureFields": ["inputs", "outputs.probabilities"],
               "captureMaxRecordBytes": 4096, "captureArchive": True}  # fmt: skip
    edit_stack(tree, "prod", **capture)
    code, output, settings = settings_of(runner, tree, "prod", f"image={IMAGE}")
    assert code == 0, output
    assert {key: settings[key] for key in capture} == capture
    FACTS.append(
        "config: capture and its archive turned on in prod's stack file passed the CLI's checks and "
        "the program's"
    )


def test_a_lambda_only_stack_needs_no_image(runner: Runner, tmp_path: Path) -> None:
    tree = checkout(tmp_path, runtimes=["lambda"])
    code, output, settings = settings_of(runner, tree, "staging")
    assert code == 0, output
    assert (settings["runtimes"], settings["image"]) == (["lambda"], None)


def test_a_stack_with_kubernetes_and_no_image_is_refused(runner: Runner, tmp_path: Path) -> None:
    tree = checkout(tmp_path, runtimes=["kubernetes"])
    code, output, _ = settings_of(runner, tree, "prod")
    assert code != 0
    assert "image is not set: the deploy workflow sets it to the pushed image's digest" in output


@pytest.mark.parametrize(
    ("args", "path", "message"),
    [
        (["--config=image"], None, "--config 'image': expected KEY=VALUE"),
        ([], "/usr/bin:/bin", "the Pulumi CLI is not on PATH"),
        ([], None, "no stack named 'nowhere' in this backend; the first deploy creates it"),
    ],
)
def test_engine_usage_errors_are_named(
    runner: Runner, tmp_path: Path, args: list[str], path: str | None, message: str
) -> None:
    tree = checkout(tmp_path)
    stack = "nowhere" if not args else "dev"
    extra = {"PATH": path} if path else {}
    result = engine(runner, tree, "preview", stack, *(["--create", *args] if args else []), **extra)
    assert result.code == 1
    assert message in result.output
    assert "Traceback" not in result.output
