"""The Kubernetes runtime through the real engine: previews with the policy pack, then dev's whole life
on the local control plane — up, a second up that changes nothing, a one-setting change, destroy."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.engine.conftest import FACTS, IMAGE, Runner, checkout, engine
from tests.engine.control_plane import ControlPlane

PRIVILEGED_POD = Path(__file__).parent / "programs" / "privileged_pod.py"
NAMESPACE = "twinserve-dev"
# Stack, component, Namespace, ServiceAccount, Deployment, Service, HPA, PDB, NetworkPolicy.
RESOURCES = 9
CREATE = ["--create", "--secrets-provider", "passphrase", f"--config=image={IMAGE}"]


@pytest.fixture(scope="module")
def runner(
    new_runner: Callable[..., Runner], cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Runner:
    state = tmp_path_factory.mktemp("state")
    return new_runner(
        PULUMI_BACKEND_URL=f"file://{state}",
        PULUMI_CONFIG_PASSPHRASE="engine-tests",
        KUBECONFIG=str(cluster.kubeconfig),
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fork that deploys only the Kubernetes runtime (the AWS provider cannot be built here)."""
    return checkout(tmp_path_factory.mktemp("checkout"), runtimes=["kubernetes"])


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_preview_of_each_environment_runs_the_policy_pack(runner: Runner, tree: Path, env: str) -> None:
    result = engine(runner, tree, "preview", env, *CREATE)
    assert result.code == 0, result.output
    assert result.changes == {"create": RESOURCES}
    assert "Policy Packs run:" in result.output
    assert f"twinserve|local|{tree}/infra/policy/analyzer" in result.output
    FACTS.append(f"preview {env}: {RESOURCES} to create; Policy Packs run: twinserve|local|…/analyzer")


def test_a_privileged_pod_is_refused_by_the_engine_naming_the_rule(runner: Runner, tree: Path) -> None:
    args = ["--create", "--secrets-provider", "passphrase", "--program", str(PRIVILEGED_POD)]
    result = engine(runner, tree, "preview", "policy-check", *args)
    assert result.code != 0
    assert "restricted-pod-profile" in result.output
    assert "mandatory" in result.output
    FACTS.append("policy: a privileged pod was refused by the engine (restricted-pod-profile, mandatory)")


def test_up_of_dev_creates_everything_on_the_api_server(
    runner: Runner, tree: Path, cluster: ControlPlane
) -> None:
    result = engine(runner, tree, "up", "dev", *CREATE)
    assert result.code == 0, result.output
    assert result.changes == {"create": RESOURCES}
    api = cluster.api
    namespace = api.get(f"/api/v1/namespaces/{NAMESPACE}")
    assert namespace is not None
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    deployment = api.wait_for(
        f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/iris",
        lambda d: (d.get("status") or {}).get("availableReplicas", 0) >= 1,
    )
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE
    read_back = {
        "Service": f"/api/v1/namespaces/{NAMESPACE}/services/iris",
        "HorizontalPodAutoscaler": (
            f"/apis/autoscaling/v2/namespaces/{NAMESPACE}/horizontalpodautoscalers/iris"
        ),
        "PodDisruptionBudget": f"/apis/policy/v1/namespaces/{NAMESPACE}/poddisruptionbudgets/iris",
        "NetworkPolicy": f"/apis/networking.k8s.io/v1/namespaces/{NAMESPACE}/networkpolicies/iris",
    }
    for kind, path in read_back.items():
        found = api.get(path)
        assert found is not None, kind
        assert found["kind"] == kind
    FACTS.append(
        f"up dev: created {RESOURCES} on {api.url} (kube-apiserver v{cluster.version}); Namespace enforcing "
        "restricted, Deployment Available on a kwok node, Service, HPA, PDB, NetworkPolicy read back"
    )


def test_a_second_up_changes_nothing(runner: Runner, tree: Path) -> None:
    result = engine(runner, tree, "up", "dev", *CREATE)
    assert result.code == 0, result.output
    assert result.changes == {"same": RESOURCES}
    FACTS.append(f"second up dev: no changes (same: {RESOURCES})")


def test_one_setting_changed_previews_as_exactly_that_change(runner: Runner, tree: Path) -> None:
    stack_file = tree / "environments" / "Pulumi.dev.yaml"
    committed = stack_file.read_text()
    data = yaml.safe_load(committed)
    data["config"]["twinserve:kubernetesMaxReplicas"] = 3
    stack_file.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        result = engine(runner, tree, "preview", "dev")
    finally:
        stack_file.write_text(committed)
    assert result.code == 0, result.output
    assert result.changes == {"update": 1, "same": RESOURCES - 1}
    assert "~ kubernetes:autoscaling/v2:HorizontalPodAutoscaler" in result.output
    assert "maxReplicas: 2 => 3" in result.output
    FACTS.append("preview dev with kubernetesMaxReplicas 2 → 3: exactly one update, the HPA's maxReplicas")


def test_destroy_leaves_the_namespace_gone(runner: Runner, tree: Path, cluster: ControlPlane) -> None:
    result = engine(runner, tree, "destroy", "dev")
    assert result.code == 0, result.output
    assert result.changes == {"delete": RESOURCES}
    _wait_gone(cluster, f"/api/v1/namespaces/{NAMESPACE}")
    FACTS.append(f"destroy dev: deleted {RESOURCES}; namespace {NAMESPACE} gone from the API server")


def _wait_gone(cluster: ControlPlane, path: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while cluster.api.get(path) is not None:
        assert time.monotonic() < deadline, f"{path} still exists after {timeout} s"
        time.sleep(0.5)
