"""The Go the workflows install builds every engine: one pinned version (tests/tools/go-version) read by
setup-go and by build.sh, no older than any pinned module's `go` line, and every job that builds or
restores the engines caches them under a key naming their versions and that Go."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.tool_paths import BUILD, tool_paths
from tests.workflows.conftest import REPO, load

GO_VERSION_FILE = "tests/tools/go-version"
GROUPS = ["pulumi", "kubernetes-provider", "control-plane", "checkers"]


def version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.strip().removeprefix("go").split("."))


def pinned_go() -> tuple[int, ...]:
    return version((REPO / GO_VERSION_FILE).read_text())


def go_line(module: str, tmp_path: Path) -> tuple[int, ...]:
    """The `go` line of a module's go.mod, as the module proxy (or Go's module cache) serves it."""
    result = subprocess.run(
        ["go", "list", "-m", "-json", module],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"},
    )
    assert result.returncode == 0, result.stderr
    return version(json.loads(result.stdout)["GoVersion"])


def test_no_pinned_module_needs_a_newer_go_than_the_workflows_install(tmp_path: Path) -> None:
    modules = subprocess.run([BUILD, "--modules"], capture_output=True, text=True, check=True).stdout.split()
    assert any(m.startswith("github.com/pulumi/pulumi/pkg/v3@") for m in modules)
    needs = {module: go_line(module, tmp_path) for module in modules}
    too_new = {m: ".".join(map(str, v)) for m, v in needs.items() if v > pinned_go()}
    assert not too_new, f"{GO_VERSION_FILE} pins {pinned_go()}; these modules need newer: {too_new}"
    # The runner's default Go (ubuntu-24.04: 1.24) cannot build the Pulumi CLI: setup-go is required.
    assert needs[next(m for m in modules if m.startswith("github.com/pulumi/pulumi/pkg/v3@"))] > (1, 25)


def jobs_running(verb: str) -> list[tuple[str, dict]]:
    found = []
    for name in ("pull-request.yml", "deploy.yml", "deploy-stack.yml"):
        for job_id, job in load(name)["jobs"].items():
            if any(s.get("run", "").startswith(verb) for s in job.get("steps", [])):
                found.append((f"{name}:{job_id}", job))
    return found


@pytest.mark.parametrize("verb", ["make tools", "make test", "make lint"])
def test_every_job_that_builds_engines_sets_up_the_pinned_go_first(verb: str) -> None:
    jobs = jobs_running(verb)
    assert jobs or verb == "make lint"
    for where, job in jobs:
        uses = [s.get("uses", "") for s in job["steps"]]
        (setup,) = [s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-go@")]
        assert setup["with"] == {"go-version-file": GO_VERSION_FILE, "cache": False}, where
        first_make = next(i for i, s in enumerate(job["steps"]) if s.get("run", "").startswith("make "))
        assert uses.index(setup["uses"]) < first_make, where


def test_each_engine_group_is_built_in_parallel_and_cached_by_its_versions() -> None:
    pr = load("pull-request.yml")["jobs"]
    tools = pr["tools"]
    assert tools["strategy"]["matrix"]["group"] == GROUPS
    assert tools["env"]["TOOLS_GROUP"] == "${{ matrix.group }}"
    (cache,) = [s for s in tools["steps"] if s.get("uses", "").startswith("actions/cache@")]
    assert cache["with"] == {"path": "${{ steps.key.outputs.path }}", "key": "${{ steps.key.outputs.key }}"}
    # The tests wait for every group, and restore each under the same key and folders.
    checks = pr["checks"]
    assert checks["needs"] == "tools"
    restores = [s for s in checks["steps"] if s.get("uses", "").startswith("actions/cache/restore@")]
    keyed = [s for s in checks["steps"] if s.get("run", "").startswith(".github/scripts/tools-cache.sh")]
    assert [s["env"]["TOOLS_GROUP"] for s in keyed] == GROUPS
    for key, restore in zip(keyed, restores, strict=True):
        assert restore["with"]["key"] == f"${{{{ steps.{key['id']}.outputs.key }}}}"
        assert restore["with"]["path"] == f"${{{{ steps.{key['id']}.outputs.path }}}}"
    assert checks["steps"][-1]["run"] == "make test"


@pytest.mark.parametrize("group", GROUPS)
def test_a_groups_cache_key_names_its_versions_and_the_go_and_lists_every_folder(group: str) -> None:
    result = subprocess.run(
        [REPO / ".github" / "scripts" / "tools-cache.sh"],
        capture_output=True,
        text=True,
        env={**os.environ, "TOOLS_GROUP": group},
        check=True,
    )
    lines = result.stdout.splitlines()
    key = lines[0].removeprefix("key=")
    assert key.startswith(f"twinserve-tools-{group}-go{(REPO / GO_VERSION_FILE).read_text().strip()}-")
    assert lines[1] == "path<<EOF"
    assert lines[-1] == "EOF"
    folders = lines[2:-1]
    paths = tool_paths()
    tools = {
        "pulumi": ["PULUMI"],
        "kubernetes-provider": ["KUBERNETES_PROVIDER"],
        "control-plane": ["ETCD", "KUBE_APISERVER", "KUBE_CONTROLLER_MANAGER", "KUBE_SCHEDULER", "KWOK"],
        "checkers": ["ACTIONLINT", "PROMTOOL", "LAMBDA_RIE"],
    }[group]
    # Every engine the suite runs is in its group's folders (a pulumi already on PATH aside).
    on_path = shutil.which("pulumi")
    built = {str(Path(paths[t]).parent) for t in tools if paths[t] and paths[t] != on_path}
    assert built <= set(folders), (built, folders)
    assert len(set(folders)) == len(folders) >= 1


def test_an_unknown_group_is_named() -> None:
    result = subprocess.run(
        [REPO / ".github" / "scripts" / "tools-cache.sh"],
        capture_output=True,
        text=True,
        env={**os.environ, "TOOLS_GROUP": "everything"},
    )
    assert result.returncode == 2
    assert "unknown group 'everything'" in result.stderr
