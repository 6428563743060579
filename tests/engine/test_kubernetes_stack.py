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
SHADOW_RESOURCES = 2  # prod's shadow phase: the shadow Service and its NetworkPolicy
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
    created = RESOURCES + SHADOW_RESOURCES * (env == "prod")
    assert result.changes == {"create": created}
    assert "Policy Packs run:" in result.output
    assert f"twinserve|local|{tree}/infra/policy/analyzer" in result.output
    FACTS.append(f"preview {env}: {created} to create; Policy Packs run: twinserve|local|…/analyzer")


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


CANARY = f"registry.example/twinserve@sha256:{'cd' * 32}"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments"


def _images(cluster: ControlPlane) -> dict[str, str]:
    """Each Deployment's image, once the canary (if any) has an available pod."""
    found = cluster.api.get(DEPLOYMENTS)["items"]
    return {d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["image"] for d in found}


def test_a_canary_is_created_beside_stable_then_discarded_or_promoted(
    runner: Runner, tree: Path, cluster: ControlPlane
) -> None:
    api = cluster.api
    result = engine(runner, tree, "up", "dev", f"--config=image={IMAGE}", f"--config=canaryImage={CANARY}")
    assert result.code == 0, result.output
    assert result.changes == {"create": 1, "same": RESOURCES}
    canary = api.wait_for(
        f"{DEPLOYMENTS}/iris-canary", lambda d: (d.get("status") or {}).get("availableReplicas", 0) >= 1
    )
    assert canary["spec"]["replicas"] == 1
    service = api.get(f"/api/v1/namespaces/{NAMESPACE}/services/iris")["spec"]["selector"]
    selector = ",".join(f"{k}={v}" for k, v in service.items())
    pods = api.get(f"/api/v1/namespaces/{NAMESPACE}/pods?labelSelector={selector}")["items"]
    tracks = sorted(p["metadata"]["labels"].get("twinserve.dev/track", "stable") for p in pods)
    assert tracks == ["canary", "stable"]  # the Service's selector reaches both
    assert _images(cluster) == {"iris": IMAGE, "iris-canary": CANARY}

    discarded = engine(runner, tree, "up", "dev", "--config=canaryImage=")
    assert discarded.code == 0, discarded.output
    assert discarded.changes == {"delete": 1, "same": RESOURCES}
    _wait_gone(cluster, f"{DEPLOYMENTS}/iris-canary")
    assert _images(cluster) == {"iris": IMAGE}

    again = engine(runner, tree, "up", "dev", f"--config=canaryImage={CANARY}")
    assert again.code == 0, again.output
    promoted = engine(runner, tree, "up", "dev", f"--config=image={CANARY}", "--config=canaryImage=")
    assert promoted.code == 0, promoted.output
    assert promoted.changes == {"update": 1, "delete": 1, "same": RESOURCES - 1}
    _wait_gone(cluster, f"{DEPLOYMENTS}/iris-canary")
    api.wait_for(f"{DEPLOYMENTS}/iris", lambda d: (d.get("status") or {}).get("updatedReplicas", 0) >= 1)
    assert _images(cluster) == {"iris": CANARY}
    FACTS.append(
        "canary on dev: up with canaryImage created iris-canary (1 pod, Service reaching both tracks); "
        "emptying it deleted only the canary; promoting (image := canary, canaryImage empty) updated the "
        "stable Deployment and deleted the canary"
    )


CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
MONITORING = f"/apis/monitoring.coreos.com/v1/namespaces/{NAMESPACE}"
GATEWAY_API = f"/apis/gateway.networking.k8s.io/v1/namespaces/{NAMESPACE}"


def _install_crds(cluster: ControlPlane, group: str, kinds: list[tuple[str, str]]) -> None:
    """Kinds another project defines (the Prometheus Operator's, the Gateway API's), as schemaless CRDs."""
    for plural, kind in kinds:
        name = f"{plural}.{group}"
        if cluster.api.get(f"{CRD_PATH}/{name}") is None:
            version = {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                },
            }
            names = {"plural": plural, "singular": kind.lower(), "kind": kind, "listKind": f"{kind}List"}
            spec = {"group": group, "scope": "Namespaced", "names": names, "versions": [version]}
            # The API server refuses a CRD in a *.k8s.io group without an approval annotation.
            approval = {
                "api-approved.kubernetes.io": "https://github.com/kubernetes-sigs/gateway-api/pull/1538"
            }
            body = {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": name, "annotations": approval if group.endswith(".k8s.io") else {}},
                "spec": spec,
            }
            cluster.api.request("POST", CRD_PATH, body)

        def established(crd: dict) -> bool:
            conditions = (crd.get("status") or {}).get("conditions") or []
            return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

        cluster.api.wait_for(f"{CRD_PATH}/{name}", established)


def test_with_the_prometheus_operator_a_pod_monitor_and_the_slo_rule_are_created(
    runner: Runner, tree: Path, cluster: ControlPlane
) -> None:
    _install_crds(
        cluster,
        "monitoring.coreos.com",
        [("podmonitors", "PodMonitor"), ("prometheusrules", "PrometheusRule")],
    )
    on = engine(runner, tree, "up", "dev", "--config=kubernetesPrometheusRule=true")
    assert on.code == 0, on.output
    assert on.changes.get("create") == 2, on.changes
    monitor = cluster.api.get(f"{MONITORING}/podmonitors/iris")
    rule = cluster.api.get(f"{MONITORING}/prometheusrules/iris")
    assert monitor is not None
    assert rule is not None
    assert monitor["spec"]["podTargetLabels"] == ["twinserve.dev/track"]
    alerts = [r["alert"] for r in rule["spec"]["groups"][0]["rules"]]
    assert alerts == ["TwinserveErrorRatio", "TwinserveThrottleRatio", "TwinserveP99Latency"]
    off = engine(runner, tree, "up", "dev", "--config=kubernetesPrometheusRule=false")
    assert off.code == 0, off.output
    assert off.changes.get("delete") == 2, off.changes
    _wait_gone(cluster, f"{MONITORING}/prometheusrules/iris")
    FACTS.append(
        "kubernetesPrometheusRule on dev, with the Prometheus Operator's CRDs: a PodMonitor and a "
        "PrometheusRule (3 alerts) created, and deleted when the setting went back off"
    )


def test_behind_a_gateway_a_canary_gets_the_routes_weight(
    runner: Runner, tree: Path, cluster: ControlPlane
) -> None:
    _install_crds(cluster, "gateway.networking.k8s.io", [("httproutes", "HTTPRoute")])
    stable = _images(cluster)["iris"]
    canary = engine(
        runner,
        tree,
        "up",
        "dev",
        f"--config=canaryImage={IMAGE}",
        "--config=kubernetesGateway=edge/public",
        "--config=kubernetesCanaryPercent=10",
    )
    assert canary.code == 0, canary.output
    route = cluster.api.get(f"{GATEWAY_API}/httproutes/iris")
    assert route is not None
    assert route["spec"]["rules"][0]["backendRefs"] == [
        {"name": "iris-stable", "port": 80, "weight": 90},
        {"name": "iris-canary", "port": 80, "weight": 10},
    ]
    for track in ("stable", "canary"):
        service = cluster.api.get(f"/api/v1/namespaces/{NAMESPACE}/services/iris-{track}")
        assert service is not None
        assert service["spec"]["selector"]["twinserve.dev/track"] == track
    pods = cluster.api.get(f"{DEPLOYMENTS}/iris")["spec"]["template"]["metadata"]["labels"]
    assert pods["twinserve.dev/track"] == "stable"  # the stable selector itself unchanged (immutable)
    off = engine(
        runner,
        tree,
        "up",
        "dev",
        "--config=canaryImage=",
        "--config=kubernetesGateway=",
        "--config=kubernetesCanaryPercent=0",
    )
    assert off.code == 0, off.output
    _wait_gone(cluster, f"{GATEWAY_API}/httproutes/iris")
    _wait_gone(cluster, f"/api/v1/namespaces/{NAMESPACE}/services/iris-stable")
    _wait_gone(cluster, f"{DEPLOYMENTS}/iris-canary")
    assert _images(cluster) == {"iris": stable}
    FACTS.append(
        "kubernetesGateway on dev, with the Gateway API's CRD: a canary at 10% made an HTTPRoute weighting "
        "iris-stable 90 / iris-canary 10, one Service per track; emptying the settings removed them"
    )


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
