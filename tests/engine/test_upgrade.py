"""The upgrade a fork makes by merging: a stack the earlier commit created takes this commit's program
with nothing to change — the same Pulumi type tokens, names and parents, so no resource is updated,
replaced or deleted by a change that only moves code. Through the real engine on the local control
plane, each commit's own `infra/engine.py` in a tree of its own files.

UPGRADE_FROM is the last commit whose program changed what it declares on Kubernetes (the metrics
port); a later change that declares something new on purpose moves it forward, saying why."""

from __future__ import annotations

import io
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.engine.conftest import FACTS, IMAGE, REPO, Runner, as_checkout, checkout, configure, engine
from tests.engine.control_plane import ControlPlane

UPGRADE_FROM = "3bd3c4367553ad73248be7724c5bea84d566a6fa"
NAMESPACE = "twinserve-upgrade"
CREATE = ["--create", "--secrets-provider", "passphrase", f"--config=image={IMAGE}"]


def tree_of(commit: str, destination: Path) -> Path:
    """The commit's files as `git archive` gives them, set as checkout() sets a tree."""
    archive = subprocess.run(["git", "archive", commit], cwd=REPO, capture_output=True, timeout=120)
    assert archive.returncode == 0, f"commit {commit} is not in this clone: {archive.stderr.decode()}"
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as files:
        files.extractall(destination, filter="data")
    return kubernetes_only(as_checkout(destination))


def kubernetes_only(tree: Path) -> Path:
    """Dev on Kubernetes alone (the AWS provider cannot be built here), in a namespace of its own."""
    configure(tree, {"twinserve:runtimes": ["kubernetes"], "twinserve:kubernetesNamespace": NAMESPACE})
    return tree


def test_a_stack_the_earlier_commit_made_takes_this_commits_program_with_no_change(
    new_runner: Callable[..., Runner], cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> None:
    state = tmp_path_factory.mktemp("upgrade-state")
    runner = new_runner(
        PULUMI_BACKEND_URL=f"file://{state}",
        PULUMI_CONFIG_PASSPHRASE="upgrade",
        KUBECONFIG=str(cluster.kubeconfig),
    )
    earlier = tree_of(UPGRADE_FROM, tmp_path_factory.mktemp("earlier"))
    now = kubernetes_only(checkout(tmp_path_factory.mktemp("now")))
    try:
        made = engine(runner, earlier, "up", "dev", *CREATE)
        assert made.code == 0, made.output
        created = made.changes["create"]
        preview = engine(runner, now, "preview", "dev", *CREATE)
        assert preview.code == 0, preview.output
        assert preview.changes == {"same": created}
        upgraded = engine(runner, now, "up", "dev", *CREATE)
        assert upgraded.code == 0, upgraded.output
        assert upgraded.changes == {"same": created}
    finally:
        destroyed = engine(runner, now, "destroy", "dev")
    assert destroyed.code == 0, destroyed.output
    FACTS.append(
        f"upgrade: dev made by {UPGRADE_FROM[:7]} ({created} resources) previews and ups with this commit's "
        "program as all same; destroyed"
    )
