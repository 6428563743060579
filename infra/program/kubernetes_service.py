"""The model server on Kubernetes: one component holding everything a hardened, autoscaled workload needs."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from program.settings import CaptureSettings, KubernetesSettings, Slo
from program.slo import alert_rules
from serving.contract import HTTP_PORT, LIVE_PATH, METRICS_PORT, READY_PATH

# The server's ports and probes come from serving/contract.py. Its METRICS_PORT is on the pods, for
# Prometheus and the rollout's bake; no Service port leads to it, and the NetworkPolicy admits it
# from inside the cluster only. It answers READY_PATH once the model is loaded and warmed, LIVE_PATH
# while its loop runs.
UID = 10001
# Time after the drain for in-flight requests to finish before the kubelet kills the pod.
SHUTDOWN_GRACE_SECONDS = 25


@dataclass(frozen=True)
class KubernetesServiceArgs:
    """The model the pods serve, and the environment's `kubernetes*` settings taken whole."""

    model_name: str
    model_version: int
    image: str
    slo: Slo
    settings: KubernetesSettings
    canary_image: str = ""  # a new model's image run beside the stable pods; empty for none
    capture: CaptureSettings = CaptureSettings()  # payload capture, the same on every pod
    shadow_image: str = ""  # a new model's image the stable pods mirror to; empty for none
    shadow_percent: int = 0  # the share of requests mirrored; 0: no shadow phase, no shadow Service


# What a worker holds before any request (TensorFlow and the model: ~550 MiB, `make bench`), what a
# request's bytes become while decoded (JSON numbers into Python objects into arrays: up to ~8x, with
# the item count bounded by the model's shape), and the least a worker may hold (one 6 MiB request).
WORKER_RESIDENT_BYTES = 600 * 2**20
DECODED_PER_BODY_BYTE = 8
MIN_BUFFERED_BYTES = 6 * 2**20
_UNITS = {
    "": 1,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def quantity_bytes(quantity: str) -> int:
    """A Kubernetes memory quantity (`1Gi`, `768Mi`, `1.5G`, `1048576`) in bytes."""
    number = quantity.rstrip("kmMGTi")
    return int(float(number) * _UNITS[quantity[len(number) :]])


def buffered_bytes_budget(memory_limit: str, workers: int) -> int:
    """Each worker's TWINSERVE_MAX_BUFFERED_BYTES, from the pod's memory limit: what is left after the
    workers' resident size, shared between them and divided by what a body grows to while decoded;
    at least one largest request per worker. So no client traffic can take the pod past its limit."""
    spare = quantity_bytes(memory_limit) - workers * WORKER_RESIDENT_BYTES
    return max(MIN_BUFFERED_BYTES, spare // (workers * DECODED_PER_BODY_BYTE))


def load_balancer_annotations(scheme: str) -> dict[str, str]:
    """The scheme, as each cloud's load balancer controller reads it: AWS's (Load Balancer Controller
    and the in-tree provider), GKE's and AKS's. The model answers plain HTTP without authentication, so
    a LoadBalancer is internal unless the environment says otherwise."""
    internal = scheme == "internal"
    return {
        "service.beta.kubernetes.io/aws-load-balancer-scheme": scheme,
        "service.beta.kubernetes.io/aws-load-balancer-internal": str(internal).lower(),
        "networking.gke.io/load-balancer-type": "Internal" if internal else "External",
        "service.beta.kubernetes.io/azure-load-balancer-internal": str(internal).lower(),
    }


# The label that sets a canary's pods apart; the Service's selector leaves it out, so it reaches both.
TRACK = "twinserve.dev/track"
# A shadow's pods carry another instance label than the stable and canary pods, so that no selector
# of theirs (the Service's, the PodDisruptionBudget's, the NetworkPolicy's) reaches them.
SHADOW_INSTANCE_SUFFIX = "-shadow"


def _http() -> dict:
    return {"port": HTTP_PORT, "protocol": "TCP"}


def _metrics_ingress() -> dict:
    """The metrics port, from pods of this cluster only (Prometheus, a port-forward's kubelet)."""
    return {"from": [{"namespace_selector": {}}], "ports": [{"port": METRICS_PORT, "protocol": "TCP"}]}


def _probe(path: str, period: int, failures: int) -> dict:
    return {
        "http_get": {"path": path, "port": "http"},
        "period_seconds": period,
        "failure_threshold": failures,
        "timeout_seconds": 2,
    }


def restricted_pod_security() -> tuple[dict, dict]:
    """Pod- and container-level security contexts that meet the Pod Security Standards' restricted profile."""
    pod = {
        "run_as_non_root": True,
        "run_as_user": UID,
        "run_as_group": UID,
        "fs_group": UID,
        "seccomp_profile": {"type": "RuntimeDefault"},
    }
    container = {
        "allow_privilege_escalation": False,
        "read_only_root_filesystem": True,
        "run_as_non_root": True,
        "run_as_user": UID,
        "run_as_group": UID,
        "capabilities": {"drop": ["ALL"]},
        "seccomp_profile": {"type": "RuntimeDefault"},
    }
    return pod, container


class KubernetesService(pulumi.ComponentResource):
    """Namespace, ServiceAccount, Deployment, Service, HPA, PodDisruptionBudget and NetworkPolicy."""

    def __init__(
        self, name: str, args: KubernetesServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("twinserve:kubernetes:ModelService", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.selector = {"app.kubernetes.io/name": args.model_name, "app.kubernetes.io/instance": name}
        self.labels = {
            **self.selector,
            "app.kubernetes.io/version": str(args.model_version),
            "app.kubernetes.io/part-of": "twinserve",
        }
        self.args = args

        # A namespace of its own, where the API server refuses any pod below the restricted profile.
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={
                "name": args.settings.namespace,
                "labels": {
                    **self.labels,
                    **{
                        f"pod-security.kubernetes.io/{mode}": "restricted"
                        for mode in ("enforce", "audit", "warn")
                    },
                },
            },
            opts=child,
        )
        scoped = pulumi.ResourceOptions(parent=self, depends_on=[self.namespace])
        meta = {"name": args.model_name, "namespace": args.settings.namespace, "labels": self.labels}

        # An identity with no API token mounted: the server never talks to the API server.
        self.service_account = k8s.core.v1.ServiceAccount(
            f"{name}-account", metadata=meta, automount_service_account_token=False, opts=scoped
        )
        # The new model beside the stable one: a fixed number of pods under the same Service. Its own
        # selector holds the track label; the stable Deployment never adopts its ReplicaSet, which its
        # Deployment controls.
        self.canary = (
            k8s.apps.v1.Deployment(
                f"{name}-canary",
                metadata={
                    **meta,
                    "name": f"{args.model_name}-canary",
                    "labels": {**self.labels, TRACK: "canary"},
                },
                spec=self._deployment_spec(
                    args.canary_image, replicas=args.settings.canary_replicas, track="canary"
                ),
                opts=scoped,
            )
            if args.canary_image
            else None
        )
        self.shadow_selector = {**self.selector, "app.kubernetes.io/instance": name + SHADOW_INSTANCE_SUFFIX}
        self.shadow_service = self._shadow_service(name, meta, scoped) if args.shadow_percent else None
        self.shadow = self._shadow(name, meta, scoped) if args.shadow_image else None
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment", metadata=meta, spec=self._deployment_spec(args.image), opts=scoped
        )
        # A stable virtual IP (or load balancer) in front of the ready pods.
        balanced = args.settings.service_type == "LoadBalancer"
        self.service = k8s.core.v1.Service(
            f"{name}-service",
            metadata={**meta, "annotations": load_balancer_annotations(args.settings.load_balancer_scheme)}
            if balanced
            else meta,
            spec={
                "type": args.settings.service_type,
                "selector": self.selector,
                "ports": [{"name": "http", "port": 80, "target_port": "http", "protocol": "TCP"}],
                **(
                    {"load_balancer_source_ranges": list(args.settings.load_balancer_source_ranges)}
                    if balanced and args.settings.load_balancer_source_ranges
                    else {}
                ),
            },
            opts=scoped,
        )
        # Replicas follow CPU between the environment's bounds; the Deployment sets none of its own.
        self.autoscaler = k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{name}-autoscaler",
            metadata=meta,
            spec={
                "scale_target_ref": {"api_version": "apps/v1", "kind": "Deployment", "name": args.model_name},
                "min_replicas": args.settings.min_replicas,
                "max_replicas": args.settings.max_replicas,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {
                                "type": "Utilization",
                                "average_utilization": args.settings.target_cpu_percent,
                            },
                        },
                    }
                ],
            },
            opts=scoped,
        )
        # Node drains and upgrades take down at most this many pods at once.
        self.disruption_budget = k8s.policy.v1.PodDisruptionBudget(
            f"{name}-disruption-budget",
            metadata=meta,
            spec={
                "max_unavailable": args.settings.pdb_max_unavailable,
                "selector": {"match_labels": self.selector},
            },
            opts=scoped,
        )
        # Inbound: the serving port from wherever the Service is reached, the metrics port from pods of
        # this cluster only (Prometheus). Outbound: nothing (the model is in the image), but for the
        # shadow pods' serving port where the environment has a shadow phase.
        mirror = [{"to": [{"pod_selector": {"match_labels": self.shadow_selector}}], "ports": [_http()]}]
        self.network_policy = k8s.networking.v1.NetworkPolicy(
            f"{name}-network-policy",
            metadata=meta,
            spec={
                "pod_selector": {"match_labels": self.selector},
                "policy_types": ["Ingress", "Egress"],
                "ingress": [{"ports": [_http()]}, _metrics_ingress()],
                **({"egress": mirror} if args.shadow_percent else {}),
            },
            opts=scoped,
        )

        self.route = self._route(name, meta, scoped) if args.settings.gateway else None
        self.monitoring = self._monitoring(name, meta, scoped) if args.settings.prometheus_rule else []
        self.endpoint = self._endpoint()
        self.register_outputs(
            {
                "namespace": args.settings.namespace,
                "endpoint": self.endpoint,
                "canary": self.canary is not None,
                "shadow": self.shadow is not None,
            }
        )

    def _shadow_service(self, name: str, meta: dict, opts: pulumi.ResourceOptions) -> k8s.core.v1.Service:
        """The shadow pods' address, declared for as long as the environment has a shadow phase: the
        stable pods mirror to its ClusterIP, which never changes, so starting or ending a shadow phase
        restarts no stable pod (with no shadow pods, a mirror is refused and pauses). An address, not a
        DNS name: the stable pods need no egress to the cluster's DNS."""
        shadow_meta = {
            **meta,
            "name": f"{self.args.model_name}-shadow",
            "labels": {**self.labels, TRACK: "shadow"},
        }
        service = k8s.core.v1.Service(
            f"{name}-shadow-service",
            metadata=shadow_meta,
            spec={
                "type": "ClusterIP",
                "selector": self.shadow_selector,
                "ports": [{"name": "http", "port": 80, "target_port": "http", "protocol": "TCP"}],
            },
            opts=opts,
        )
        # The shadow pods answer the stable pods alone, and reach nothing.
        k8s.networking.v1.NetworkPolicy(
            f"{name}-shadow-network-policy",
            metadata=shadow_meta,
            spec={
                "pod_selector": {"match_labels": self.shadow_selector},
                "policy_types": ["Ingress", "Egress"],
                "ingress": [
                    {"from": [{"pod_selector": {"match_labels": self.selector}}], "ports": [_http()]},
                    _metrics_ingress(),
                ],
            },
            opts=opts,
        )
        return service

    def _shadow(self, name: str, meta: dict, opts: pulumi.ResourceOptions) -> k8s.apps.v1.Deployment:
        """The new model's pods during a shadow phase: the Service's selector does not reach them."""
        return k8s.apps.v1.Deployment(
            f"{name}-shadow",
            metadata={
                **meta,
                "name": f"{self.args.model_name}-shadow",
                "labels": {**self.labels, TRACK: "shadow"},
            },
            spec=self._deployment_spec(
                self.args.shadow_image, replicas=self.args.settings.shadow_replicas, track="shadow"
            ),
            opts=opts,
        )

    def _route(self, name: str, meta: dict, opts: pulumi.ResourceOptions) -> k8s.apiextensions.CustomResource:
        """Through a Gateway: one Service per track and an HTTPRoute weighting them, so the canary gets
        its share of requests whatever the pod counts (the main Service still reaches both)."""
        args = self.args
        tracks = ["stable", "canary"] if self.canary else ["stable"]
        for track in tracks:
            k8s.core.v1.Service(
                f"{name}-{track}-service",
                metadata={
                    **meta,
                    "name": f"{args.model_name}-{track}",
                    "labels": {**self.labels, TRACK: track},
                },
                spec={
                    "type": "ClusterIP",
                    "selector": {**self.selector, TRACK: track},
                    "ports": [{"name": "http", "port": 80, "target_port": "http", "protocol": "TCP"}],
                },
                opts=opts,
            )
        weights = {"stable": 100 - args.settings.canary_percent, "canary": args.settings.canary_percent}
        namespace, gateway = args.settings.gateway.split("/", 1)
        return k8s.apiextensions.CustomResource(
            f"{name}-route",
            api_version="gateway.networking.k8s.io/v1",
            kind="HTTPRoute",
            metadata=meta,
            spec={
                "parentRefs": [
                    {
                        "group": "gateway.networking.k8s.io",
                        "kind": "Gateway",
                        "namespace": namespace,
                        "name": gateway,
                    }
                ],
                "rules": [
                    {
                        "backendRefs": [
                            {"name": f"{args.model_name}-{t}", "port": 80, "weight": weights[t]}
                            for t in tracks
                        ]
                    }
                ],
            },
            opts=opts,
        )

    def _monitoring(
        self, name: str, meta: dict, opts: pulumi.ResourceOptions
    ) -> list[k8s.apiextensions.CustomResource]:
        """For the Prometheus Operator: a PodMonitor scraping every pod of both tracks (the track label
        kept), and the SLO's alerts as a PrometheusRule."""
        extra = dict(label.split("=", 1) for label in self.args.settings.monitoring_labels)
        meta = {**meta, "labels": {**meta["labels"], **extra}}
        monitor = k8s.apiextensions.CustomResource(
            f"{name}-pod-monitor",
            api_version="monitoring.coreos.com/v1",
            kind="PodMonitor",
            metadata=meta,
            spec={
                "selector": {"matchLabels": self.selector},
                "podTargetLabels": [TRACK],
                "podMetricsEndpoints": [{"port": "metrics", "path": "/metrics", "interval": "15s"}],
            },
            opts=opts,
        )
        rule = k8s.apiextensions.CustomResource(
            f"{name}-slo-rule",
            api_version="monitoring.coreos.com/v1",
            kind="PrometheusRule",
            metadata=meta,
            spec={"groups": alert_rules(self.args.model_name, self.args.settings.namespace, self.args.slo)},
            opts=opts,
        )
        return [monitor, rule]

    def _deployment_spec(self, image: str, replicas: int | None = None, track: str = "stable") -> dict:
        """The stable pods (replicas left to the autoscaler), or a canary's or a shadow's."""
        args = self.args
        selector = self.shadow_selector if track == "shadow" else self.selector
        tracked = {TRACK: track} if track != "stable" else {}
        # Behind a Gateway the stable pods carry their track too, for the stable Service to select; the
        # stable selector itself is immutable and never changes.
        pod_track = tracked or ({TRACK: "stable"} if args.settings.gateway else {})
        pod_security, container_security = restricted_pod_security()
        spread = [
            {
                "max_skew": 1,
                "topology_key": key,
                "when_unsatisfiable": "ScheduleAnyway",
                "label_selector": {"match_labels": selector},
            }
            for key in ("kubernetes.io/hostname", "topology.kubernetes.io/zone")
        ]
        env = {
            "PORT": str(HTTP_PORT),
            "TWINSERVE_METRICS_PORT": str(METRICS_PORT),
            "TWINSERVE_WORKERS": str(args.settings.workers),
            "TWINSERVE_DRAIN_SECONDS": str(args.settings.drain_seconds),
            "TWINSERVE_MAX_BUFFERED_BYTES": str(
                buffered_bytes_budget(args.settings.memory_limit, args.settings.workers)
            ),
            **args.capture.environment(),
            # A canary's or a shadow's captured records say so; stable pods keep the default, "stable".
            **({"TWINSERVE_TRACK": track} if tracked else {}),
            **(self._mirroring() if track == "stable" and self.shadow_service else {}),
        }
        container = {
            "name": "server",
            "image": image,
            "image_pull_policy": "IfNotPresent",
            "ports": [
                {"name": "http", "container_port": HTTP_PORT, "protocol": "TCP"},
                {"name": "metrics", "container_port": METRICS_PORT, "protocol": "TCP"},
            ],
            "env": [{"name": k, "value": v} for k, v in env.items()],
            "resources": {
                "requests": {"cpu": args.settings.cpu_request, "memory": args.settings.memory_request},
                "limits": {"cpu": args.settings.cpu_limit, "memory": args.settings.memory_limit},
            },
            "security_context": container_security,
            "startup_probe": _probe(READY_PATH, 2, 60),
            "readiness_probe": _probe(READY_PATH, 5, 2),
            "liveness_probe": _probe(LIVE_PATH, 10, 3),
            "volume_mounts": [{"name": "tmp", "mount_path": "/tmp"}],  # noqa: S108 - the writable scratch dir
        }
        return {
            **({"replicas": replicas} if replicas else {}),
            "selector": {"match_labels": {**selector, **tracked}},
            "revision_history_limit": 5,
            "strategy": {"type": "RollingUpdate", "rolling_update": {"max_unavailable": 0, "max_surge": 1}},
            "template": {
                "metadata": {
                    "labels": {**self.labels, **selector, **pod_track},
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(METRICS_PORT),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    "service_account_name": args.model_name,
                    "automount_service_account_token": False,
                    "security_context": pod_security,
                    "termination_grace_period_seconds": args.settings.drain_seconds + SHUTDOWN_GRACE_SECONDS,
                    "topology_spread_constraints": spread,
                    "containers": [container],
                    "volumes": [{"name": "tmp", "empty_dir": {"size_limit": "64Mi"}}],
                },
            },
        }

    def _mirroring(self) -> dict[str, pulumi.Output[str] | str]:
        """The stable pods' shadow: the shadow Service's address and the share mirrored."""
        assert self.shadow_service is not None
        address = self.shadow_service.spec.apply(lambda spec: f"http://{spec.cluster_ip}")
        return {
            "TWINSERVE_SHADOW_URL": address,
            "TWINSERVE_SHADOW_SAMPLE_RATE": f"{self.args.shadow_percent / 100:g}",
        }

    def _endpoint(self) -> pulumi.Output[str]:
        """The load balancer's address when there is one, else the in-cluster DNS name."""
        in_cluster = f"http://{self.args.model_name}.{self.args.settings.namespace}.svc.cluster.local"
        if self.args.settings.service_type != "LoadBalancer":
            return pulumi.Output.from_input(in_cluster)

        def address(status: k8s.core.v1.outputs.ServiceStatus | None) -> str:
            ingress = (status.load_balancer.ingress if status and status.load_balancer else None) or []
            host = (ingress[0].hostname or ingress[0].ip) if ingress else None
            return f"http://{host}" if host else in_cluster

        return self.service.status.apply(address)
