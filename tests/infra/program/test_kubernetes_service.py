"""The Kubernetes component, per environment: resources, the restricted pod, probes, scaling, exposure."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from offline.mocks import Run, run_program
from program.settings import PROJECT, from_config

from tests.infra.conftest import IMAGE, INFRA

KINDS = {
    "Namespace",
    "ServiceAccount",
    "Deployment",
    "Service",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "NetworkPolicy",
}


def kind(stack: Run, name: str) -> dict:
    """The one object of a kind, leaving aside a shadow phase's (prod declares its Service and policy)."""
    (found,) = [
        r.inputs
        for r in stack.resources
        if r.is_kubernetes and r.inputs["kind"] == name and "shadow" not in r.name
    ]
    return found


def pod(stack: Run) -> dict:
    return kind(stack, "Deployment")["spec"]["template"]["spec"]


def test_one_of_each_kind_in_its_own_namespace(stack: Run, env: str) -> None:
    manifests = [r.inputs for r in stack.resources if r.is_kubernetes]
    shadow = ["Service", "NetworkPolicy"] if env == "prod" else []  # prod's shadow phase: its address
    assert sorted(m["kind"] for m in manifests) == sorted([*KINDS, *shadow])
    namespaced = [m for m in manifests if m["kind"] != "Namespace"]
    assert {m["metadata"]["namespace"] for m in namespaced} == {f"twinserve-{env}"}


def test_namespace_enforces_the_restricted_profile(stack: Run) -> None:
    labels = kind(stack, "Namespace")["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"


def test_pod_meets_the_restricted_profile(stack: Run) -> None:
    spec = pod(stack)
    (container,) = spec["containers"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] >= 10000
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": 10001.0,
        "runAsGroup": 10001.0,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert spec["automountServiceAccountToken"] is False
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert spec["volumes"] == [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}]


def test_container_runs_the_image_by_digest_with_limits_and_probes(
    stack: Run, env: str, config_for: Callable[..., dict[str, str]]
) -> None:
    settings = from_config(config_for(env), env)
    (container,) = pod(stack)["containers"]
    assert container["image"] == IMAGE
    assert container["resources"] == {
        "requests": {"cpu": settings.kubernetes.cpu_request, "memory": settings.kubernetes.memory_request},
        "limits": {"cpu": settings.kubernetes.cpu_limit, "memory": settings.kubernetes.memory_limit},
    }
    probes = {
        k: (v["httpGet"]["path"], v["httpGet"]["port"]) for k, v in container.items() if k.endswith("Probe")
    }
    assert probes == {
        "startupProbe": ("/v2/health/ready", "http"),
        "readinessProbe": ("/v2/health/ready", "http"),
        "livenessProbe": ("/v2/health/live", "http"),
    }
    env_vars = {e["name"]: e["value"] for e in container["env"]}
    assert env_vars["TWINSERVE_WORKERS"] == str(settings.kubernetes.workers)
    assert pod(stack)["terminationGracePeriodSeconds"] > settings.kubernetes.drain_seconds


def test_rollout_and_spread(stack: Run) -> None:
    deployment = kind(stack, "Deployment")["spec"]
    assert "replicas" not in deployment  # the autoscaler owns the count
    assert deployment["strategy"]["rollingUpdate"] == {"maxUnavailable": 0.0, "maxSurge": 1.0}
    keys = {c["topologyKey"] for c in pod(stack)["topologySpreadConstraints"]}
    assert keys == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}


def test_autoscaler_and_disruption_budget_follow_the_environment(
    stack: Run, env: str, config_for: Callable[..., dict[str, str]]
) -> None:
    settings = from_config(config_for(env), env)
    hpa = kind(stack, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (
        settings.kubernetes.min_replicas,
        settings.kubernetes.max_replicas,
    )
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "iris"}
    pdb = kind(stack, "PodDisruptionBudget")["spec"]
    assert pdb["maxUnavailable"] == settings.kubernetes.pdb_max_unavailable
    assert pdb["selector"]["matchLabels"] == kind(stack, "Deployment")["spec"]["selector"]["matchLabels"]


def test_network_policy_admits_the_serving_port_the_metrics_from_the_cluster_and_no_egress(
    stack: Run, env: str
) -> None:
    spec = kind(stack, "NetworkPolicy")["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["ingress"] == [
        {"ports": [{"port": 8080.0, "protocol": "TCP"}]},
        {"from": [{"namespaceSelector": {}}], "ports": [{"port": 8082.0, "protocol": "TCP"}]},
    ]
    if env == "prod":  # its shadow phase: to the shadow pods' serving port alone (tested below)
        (egress,) = spec.pop("egress")
        assert egress["ports"] == [{"port": 8080.0, "protocol": "TCP"}]
    assert "egress" not in spec


def test_metrics_are_on_a_port_of_their_own_that_no_service_exposes(run_stack: Callable[..., Run]) -> None:
    run = run_stack("prod", kubernetesPrometheusRule="true")
    deployment = run.one("kubernetes:apps/v1:Deployment").inputs
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8080.0, "metrics": 8082.0}
    env = {e["name"]: e["value"] for e in container["env"]}
    assert (env["PORT"], env["TWINSERVE_METRICS_PORT"]) == ("8080", "8082")
    assert deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == "8082"
    services = [r.inputs for r in run.resources if r.is_kubernetes and r.inputs["kind"] == "Service"]
    assert services
    for service in services:
        assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]


@pytest.mark.parametrize(
    ("env_name", "service_type"), [("dev", "ClusterIP"), ("staging", "ClusterIP"), ("prod", "LoadBalancer")]
)
def test_service_type_per_environment(
    run_stack: Callable[..., Run], env_name: str, service_type: str
) -> None:
    assert kind(run_stack(env_name), "Service")["spec"]["type"] == service_type


def test_outputs_name_the_namespace_and_endpoint(stack: Run, env: str) -> None:
    assert stack.outputs["kubernetesNamespace"] == f"twinserve-{env}"
    assert stack.outputs["kubernetesEndpoint"].startswith("http://")
    assert stack.outputs["imageDigest"] == IMAGE.split("@")[1]


def test_a_kubeconfig_setting_gives_an_explicit_provider(run_stack: Callable[..., Run]) -> None:
    run = run_stack("dev", kubeconfig="apiVersion: v1\nkind: Config\n")
    (provider,) = run.of_type("pulumi:providers:kubernetes")
    assert "kubeconfig" in provider.inputs
    assert not run_stack("dev").of_type("pulumi:providers:kubernetes")


def test_lambda_only_environment_declares_no_kubernetes(run_stack: Callable[..., Run]) -> None:
    run = run_stack("dev", runtimes='["lambda"]', image="")
    assert not [r for r in run.resources if r.is_kubernetes]
    assert "kubernetesEndpoint" not in run.outputs


def test_a_plaintext_kubeconfig_fails_the_program_naming_the_key(
    config_for: Callable[..., dict[str, str]],
) -> None:
    with pytest.raises(Exception, match="twinserve:kubeconfig is stored in plaintext"):
        run_program(INFRA, PROJECT, "dev", config_for("dev", kubeconfig="apiVersion: v1\nkind: Config\n"))


CANARY = IMAGE.rsplit("@", 1)[0] + "@sha256:" + "c" * 64


def test_a_canary_runs_beside_the_stable_pods_behind_the_same_service(run_stack: Callable[..., Run]) -> None:
    run = run_stack("prod", canaryImage=CANARY, kubernetesCanaryReplicas=2)
    deployments = {
        r.inputs["metadata"]["name"]: r.inputs
        for r in run.resources
        if r.is_kubernetes and r.inputs["kind"] == "Deployment"
    }
    stable, canary = deployments["iris"], deployments["iris-canary"]
    assert stable["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE
    assert "replicas" not in stable["spec"]  # the autoscaler's
    assert canary["spec"]["template"]["spec"]["containers"][0]["image"] == CANARY
    assert canary["spec"]["replicas"] == 2
    canary_labels = canary["spec"]["template"]["metadata"]["labels"]
    assert canary["spec"]["selector"]["matchLabels"] == {**stable["spec"]["selector"]["matchLabels"],
                                                         "twinserve.dev/track": "canary"}  # fmt: skip
    service = kind(run, "Service")["spec"]["selector"]
    assert service.items() <= canary_labels.items()  # the Service reaches the canary's pods too
    assert kind(run, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]["name"] == "iris"
    # Both run the same hardened pod: only the image and the track label differ.
    stable_pod, canary_pod = stable["spec"]["template"]["spec"], canary["spec"]["template"]["spec"]
    assert {**canary_pod, "containers": None} == {**stable_pod, "containers": None}
    assert run.outputs["kubernetesCanary"] == "iris-canary"
    assert run_stack("prod").outputs["kubernetesCanary"] is None


def test_without_the_prometheus_operator_no_monitoring_objects(stack: Run) -> None:
    assert not [r for r in stack.resources if "monitoring.coreos.com" in r.type]
    assert stack.outputs["kubernetesPrometheusRule"] is None


def test_with_the_prometheus_operator_the_pods_are_scraped_and_the_slo_alerts_declared(
    run_stack: Callable[..., Run],
) -> None:
    run = run_stack("prod", kubernetesPrometheusRule="true")
    monitor = run.one("kubernetes:monitoring.coreos.com/v1:PodMonitor").inputs
    deployment = run.one("kubernetes:apps/v1:Deployment").inputs
    assert monitor["metadata"]["namespace"] == "twinserve-prod"
    assert monitor["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert monitor["spec"]["podTargetLabels"] == ["twinserve.dev/track"]  # which track a series is of
    assert monitor["spec"]["podMetricsEndpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "15s"}
    ]
    rule = run.one("kubernetes:monitoring.coreos.com/v1:PrometheusRule").inputs
    (group,) = rule["spec"]["groups"]
    alerts = {r["alert"]: r for r in group["rules"]}
    assert sorted(alerts) == ["TwinserveErrorRatio", "TwinserveP99Latency", "TwinserveThrottleRatio"]
    assert alerts["TwinserveErrorRatio"]["expr"].endswith("> 0.005")  # prod's alarmErrorRatio
    assert alerts["TwinserveP99Latency"]["expr"].endswith("> 1")  # alarmP99Ms 1000, in seconds
    assert all(a["for"] == "2m" for a in alerts.values())
    assert run.outputs["kubernetesPrometheusRule"] == "iris"


def test_the_prometheus_selectors_labels_go_on_both_monitoring_objects(run_stack: Callable[..., Run]) -> None:
    run = run_stack(
        "prod", kubernetesPrometheusRule="true", kubernetesMonitoringLabels=["release=kube-prometheus"]
    )
    for kind_ in ("PodMonitor", "PrometheusRule"):
        labels = run.one(f"kubernetes:monitoring.coreos.com/v1:{kind_}").inputs["metadata"]["labels"]
        assert labels["release"] == "kube-prometheus"
        assert labels["app.kubernetes.io/name"] == "iris"
    assert "release" not in run.one("kubernetes:apps/v1:Deployment").inputs["metadata"]["labels"]


@pytest.mark.parametrize("label", ["release", "=x", "release=has space", "-bad=x"])
def test_a_monitoring_label_that_is_not_key_value_is_named(
    config_for: Callable[..., dict[str, str]], label: str
) -> None:
    from program.settings import SettingsError

    with pytest.raises(
        SettingsError, match=r"kubernetesMonitoringLabels.*is not a Kubernetes label as key=value"
    ):
        from_config(config_for("prod", kubernetesMonitoringLabels=[label]), "prod")


def test_behind_a_gateway_the_route_weights_the_tracks_by_share(run_stack: Callable[..., Run]) -> None:
    run = run_stack("prod", canaryImage=CANARY, kubernetesGateway="edge/public", kubernetesCanaryPercent=10)
    route = run.one("kubernetes:gateway.networking.k8s.io/v1:HTTPRoute").inputs
    assert route["metadata"]["namespace"] == "twinserve-prod"
    assert route["spec"]["parentRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "edge", "name": "public"}
    ]
    (rule,) = route["spec"]["rules"]
    assert rule["backendRefs"] == [
        {"name": "iris-stable", "port": 80, "weight": 90},
        {"name": "iris-canary", "port": 80, "weight": 10},
    ]
    services = {
        s.inputs["metadata"]["name"]: s.inputs["spec"] for s in run.of_type("kubernetes:core/v1:Service")
    }
    deployments = {
        d.inputs["metadata"]["name"]: d.inputs for d in run.of_type("kubernetes:apps/v1:Deployment")
    }
    for track, deployment in (("stable", "iris"), ("canary", "iris-canary")):
        pods = deployments[deployment]["spec"]["template"]["metadata"]["labels"]
        assert services[f"iris-{track}"]["selector"].items() <= pods.items()
        other = deployments["iris-canary" if track == "stable" else "iris"]["spec"]["template"]["metadata"][
            "labels"
        ]
        assert not services[f"iris-{track}"]["selector"].items() <= other.items()  # one track each
    assert services["iris"]["selector"] == deployments["iris"]["spec"]["selector"]["matchLabels"]  # both
    # The stable selector is immutable: only its pods' labels gain the track.
    assert "twinserve.dev/track" not in deployments["iris"]["spec"]["selector"]["matchLabels"]
    assert run.outputs["kubernetesRoute"] == "iris"


def test_behind_a_gateway_without_a_canary_all_weight_is_on_stable(run_stack: Callable[..., Run]) -> None:
    run = run_stack("prod", kubernetesGateway="edge/public")
    (rule,) = run.one("kubernetes:gateway.networking.k8s.io/v1:HTTPRoute").inputs["spec"]["rules"]
    assert rule["backendRefs"] == [{"name": "iris-stable", "port": 80, "weight": 100}]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"kubernetesCanaryPercent": 10, "canaryImage": CANARY},
            "kubernetesCanaryPercent weights a Gateway route",
        ),
        ({"kubernetesGateway": "public"}, "kubernetesGateway"),
        (
            {"kubernetesGateway": "edge/public", "runtimes": ["lambda"]},
            "does not deploy the kubernetes runtime",
        ),
    ],
)
def test_gateway_settings_that_cannot_work_are_named(
    config_for: Callable[..., dict[str, str]], overrides: dict, message: str
) -> None:
    from program.settings import SettingsError

    with pytest.raises(SettingsError, match=message):
        from_config(config_for("prod", **overrides), "prod")


@pytest.mark.parametrize(
    ("limit", "workers", "budget_mib"),
    [("1Gi", 1, 53), ("2Gi", 1, 181), ("4Gi", 2, 181), ("1Gi", 2, 6), ("1.5G", 1, 103)],
)
def test_each_workers_byte_budget_follows_the_pods_memory_limit(
    limit: str, workers: int, budget_mib: int
) -> None:
    from program.kubernetes_service import buffered_bytes_budget

    assert buffered_bytes_budget(limit, workers) // 2**20 == budget_mib


def test_the_server_gets_its_byte_budget_from_the_stack(run_stack: Callable[..., Run]) -> None:
    (deployment,) = run_stack("dev").of_type("kubernetes:apps/v1:Deployment")
    (container,) = deployment.inputs["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert int(env["TWINSERVE_MAX_BUFFERED_BYTES"]) == 53 * 2**20  # 1Gi, one worker


def server_env(deployment: dict) -> dict[str, str]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in container["env"]}


def test_capture_is_off_unless_set_and_then_every_pod_captures_alike(run_stack: Callable[..., Run]) -> None:
    (deployment,) = run_stack("dev").of_type("kubernetes:apps/v1:Deployment")
    assert not [name for name in server_env(deployment.inputs) if name.startswith("TWINSERVE_CAPTURE")]
    fields = '["inputs", "outputs.probabilities"]'
    run = run_stack("prod", canaryImage=CANARY, captureSampleRate="0.1", captureFields=fields)
    deployments = run.of_type("kubernetes:apps/v1:Deployment")
    envs = {r.inputs["metadata"]["name"]: server_env(r.inputs) for r in deployments}
    capture = {
        "TWINSERVE_CAPTURE_SAMPLE_RATE": "0.1",
        "TWINSERVE_CAPTURE_FIELDS": "inputs,outputs.probabilities",
        "TWINSERVE_CAPTURE_MAX_RECORD_BYTES": "16384",
    }
    assert capture.items() <= envs["iris"].items()
    assert {**capture, "TWINSERVE_TRACK": "canary"}.items() <= envs["iris-canary"].items()
    assert "TWINSERVE_TRACK" not in envs["iris"]  # the server's default: stable


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"captureSampleRate": "1.5"}, "twinserve:captureSampleRate"),
        ({"captureFields": '["payload"]'}, r"twinserve:captureFields: .*\['payload'\] are not inputs"),
        ({"captureMaxRecordBytes": "100"}, "twinserve:captureMaxRecordBytes"),
    ],
)
def test_a_capture_setting_out_of_range_is_named(
    config_for: Callable[..., dict[str, str]], overrides: dict, message: str
) -> None:
    from program.settings import SettingsError

    with pytest.raises(SettingsError, match=message):
        from_config(config_for("dev", **overrides), "dev")


def by_name(run: Run, kind_name: str) -> dict[str, dict]:
    return {
        r.inputs["metadata"]["name"]: r.inputs
        for r in run.resources
        if r.is_kubernetes and r.inputs["kind"] == kind_name
    }


def test_a_shadow_phase_gives_the_stable_pods_a_fixed_address_to_mirror_to_and_egress_there_alone(
    run_stack: Callable[..., Run],
) -> None:
    """Declared whenever rolloutShadowMinutes is set, with or without shadow pods: starting or ending a
    shadow phase changes nothing in the stable pods."""
    idle = run_stack("prod", rolloutShadowMinutes=10, rolloutShadowPercent=25)
    running = run_stack("prod", rolloutShadowMinutes=10, rolloutShadowPercent=25, shadowImage=CANARY)
    assert by_name(idle, "Deployment")["iris"] == by_name(running, "Deployment")["iris"]
    assert by_name(idle, "NetworkPolicy") == by_name(running, "NetworkPolicy")
    stable = by_name(running, "Deployment")["iris"]
    env = server_env(stable)
    assert env["TWINSERVE_SHADOW_URL"] == "http://10.96.0.10"  # the shadow Service's ClusterIP
    assert env["TWINSERVE_SHADOW_SAMPLE_RATE"] == "0.25"
    services = by_name(running, "Service")
    assert services["iris-shadow"]["spec"]["type"] == "ClusterIP"
    shadow_pods = services["iris-shadow"]["spec"]["selector"]
    assert shadow_pods["app.kubernetes.io/instance"] == "serving-shadow"
    policies = by_name(running, "NetworkPolicy")
    assert policies["iris"]["spec"]["egress"] == [
        {
            "to": [{"podSelector": {"matchLabels": shadow_pods}}],
            "ports": [{"port": 8080.0, "protocol": "TCP"}],
        }
    ]
    shadow_policy = policies["iris-shadow"]["spec"]
    assert shadow_policy["podSelector"]["matchLabels"] == shadow_pods
    assert "egress" not in shadow_policy  # the shadow reaches nothing
    assert shadow_policy["ingress"][0] == {
        "from": [{"podSelector": {"matchLabels": services["iris"]["spec"]["selector"]}}],
        "ports": [{"port": 8080.0, "protocol": "TCP"}],
    }
    without = run_stack("prod", rolloutShadowMinutes=0)
    assert "TWINSERVE_SHADOW_URL" not in server_env(by_name(without, "Deployment")["iris"])
    assert set(by_name(without, "Service")) == {"iris"}


def test_the_shadow_pods_run_the_new_image_out_of_every_stable_selector_and_mirror_nothing(
    run_stack: Callable[..., Run],
) -> None:
    run = run_stack("prod", rolloutShadowMinutes=10, shadowImage=CANARY, kubernetesShadowReplicas=2)
    deployments = by_name(run, "Deployment")
    stable, shadow = deployments["iris"], deployments["iris-shadow"]
    assert shadow["spec"]["template"]["spec"]["containers"][0]["image"] == CANARY
    assert shadow["spec"]["replicas"] == 2
    labels = shadow["spec"]["template"]["metadata"]["labels"]
    assert shadow["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert labels["twinserve.dev/track"] == "shadow"
    for selector in (
        by_name(run, "Service")["iris"]["spec"]["selector"],
        kind(run, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        by_name(run, "NetworkPolicy")["iris"]["spec"]["podSelector"]["matchLabels"],
        stable["spec"]["selector"]["matchLabels"],
    ):
        assert not selector.items() <= labels.items()  # no stable selector reaches a shadow pod
    env = server_env(shadow)
    assert env["TWINSERVE_TRACK"] == "shadow"
    assert "TWINSERVE_SHADOW_URL" not in env  # a shadow never mirrors
    stable_pod, shadow_pod = stable["spec"]["template"]["spec"], shadow["spec"]["template"]["spec"]
    assert {**shadow_pod, "containers": None, "topologySpreadConstraints": None} == {
        **stable_pod, "containers": None, "topologySpreadConstraints": None,
    }  # fmt: skip
    assert run.outputs["kubernetesShadow"] == "iris-shadow"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"shadowImage": CANARY, "rolloutShadowMinutes": 0}, "rolloutShadowMinutes is 0"),
        ({"shadowImage": IMAGE, "rolloutShadowMinutes": 5}, "shadowImage is the stable image"),
        (
            {"shadowImage": CANARY, "canaryImage": CANARY, "rolloutShadowMinutes": 5},
            "shadowImage and canaryImage are both set",
        ),
        (
            {"shadowImage": CANARY, "rolloutShadowMinutes": 5, "runtimes": ["lambda"]},
            "shadowImage is set, but this environment does not deploy the kubernetes runtime",
        ),
        (
            {"shadowImage": "registry.example/iris:latest"},
            "shadowImage: must be an image reference by digest",
        ),
        (
            {"rolloutShadowMinutes": 40, "rolloutStrategy": "canary", "rolloutBakeMinutes": 10},
            "after rolloutShadowMinutes 40 .* bakes 50 minutes",
        ),
    ],
)
def test_shadow_settings_that_cannot_work_are_named(
    config_for: Callable[..., dict[str, str]], overrides: dict, message: str
) -> None:
    from program.settings import SettingsError

    with pytest.raises(SettingsError, match=message):
        from_config(config_for("prod", **overrides), "prod")
