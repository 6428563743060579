"""Every committed stack passes the Pulumi CLI's config checks; the program accepts what the CLI hands it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from settings import PROJECT, SettingsError, check_secrets, from_config

from tests.infra.cli_config import CliConfigError, Value, stack_values, validate_project, validate_stack
from tests.infra.conftest import ENVS, IMAGE, REPO

PROJECT_FILE = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
KUBECONFIG = "apiVersion: v1\nkind: Config\nclusters: []\n"


def cli(env: str, **set_values: Value) -> dict[str, Value]:
    """`pulumi preview --stack env` after `pulumi config set` of each value: the config the program gets."""
    stack = yaml.safe_load((REPO / "environments" / f"Pulumi.{env}.yaml").read_text())
    values = stack_values(stack["config"]) | {f"{PROJECT}:{k}": v for k, v in set_values.items()}
    return validate_stack(PROJECT_FILE, env, values)


def program_settings(merged: dict[str, Value], env: str, zip_dir: Path) -> Any:
    strings = {k: v.text for k, v in merged.items()} | {f"{PROJECT}:lambdaZipDir": str(zip_dir)}
    check_secrets(strings, lambda key: merged[key].secure)
    return from_config(strings, env)


def test_the_project_file_is_valid() -> None:
    validate_project(PROJECT_FILE)


@pytest.mark.parametrize("env", ENVS)
def test_as_committed_plus_the_image(env: str, zip_dir: Path) -> None:
    settings = program_settings(cli(env, image=Value(IMAGE)), env, zip_dir)
    assert settings.image == IMAGE
    assert settings.kubeconfig == ""


@pytest.mark.parametrize("env", ENVS)
def test_lambda_only_with_no_image_and_no_kubeconfig(env: str, zip_dir: Path) -> None:
    runtimes = Value(
        json.dumps(["lambda"]), is_object=True
    )  # `pulumi config set --path 'runtimes[0]' lambda`
    settings = program_settings(cli(env, runtimes=runtimes), env, zip_dir)
    assert settings.runtimes == ["lambda"]
    assert settings.image is None


@pytest.mark.parametrize("env", ENVS)
def test_kubernetes_through_the_ambient_context(env: str, zip_dir: Path) -> None:
    runtimes = Value(json.dumps(["kubernetes"]), is_object=True)
    settings = program_settings(cli(env, runtimes=runtimes, image=Value(IMAGE)), env, zip_dir)
    assert settings.kubeconfig == ""


@pytest.mark.parametrize("env", ENVS)
def test_an_encrypted_kubeconfig(env: str, zip_dir: Path) -> None:
    merged = cli(env, image=Value(IMAGE), kubeconfig=Value(KUBECONFIG, secure=True))
    assert program_settings(merged, env, zip_dir).kubeconfig == KUBECONFIG


def test_a_plaintext_kubeconfig_is_refused_by_the_program(zip_dir: Path) -> None:
    merged = cli("dev", image=Value(IMAGE), kubeconfig=Value(KUBECONFIG))
    with pytest.raises(
        SettingsError, match=r"twinserve:kubeconfig is stored in plaintext; set it with `pulumi"
    ):
        program_settings(merged, "dev", zip_dir)


def test_runtimes_set_as_a_plain_string_is_refused_as_the_cli_does() -> None:
    with pytest.raises(CliConfigError, match="configuration key 'runtimes' must be of type 'array<string>'"):
        cli("dev", image=Value(IMAGE), runtimes=Value('["kubernetes"]'))


@pytest.mark.parametrize(
    ("declared", "set_values", "message"),
    [
        (  # a key with a type and no default is required: the template's first schema stopped every stack
            {"image": {"type": "string"}, "kubeconfig": {"type": "string", "secret": True}},
            {},
            "Stack 'dev' is missing configuration values 'image' and 'kubeconfig'",
        ),
        (  # a default on a secret key is merged in as plaintext, then refused
            {"kubeconfig": {"type": "string", "secret": True, "default": ""}},
            {},
            "Stack 'dev' with configuration key 'kubeconfig' must be encrypted as it's secret",
        ),
        (
            {"replicas": {"type": "integer", "default": 1}},
            {"twinserve:replicas": Value("two")},
            "Stack 'dev' with configuration key 'replicas' must be of type 'integer'",
        ),
    ],
)
def test_the_cli_rules_catch_what_stopped_first_previews(
    declared: dict[str, Any], set_values: dict[str, Value], message: str
) -> None:
    project = {"name": PROJECT, "config": declared}
    with pytest.raises(CliConfigError, match=message):
        validate_stack(project, "dev", set_values)
