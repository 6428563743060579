"""Stack configuration read into typed settings: every `twinserve:*` key, validated once.

Keys and defaults are declared in Pulumi.yaml's config schema (the CLI applies them to
every stack); `environments/Pulumi.<env>.yaml` holds only what differs. A missing,
misspelled or out-of-range key fails the preview with a message naming the key.
"""

from __future__ import annotations

import ipaddress
import json
import re
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo

PROJECT = "twinserve"
ROOT = Path(__file__).resolve().parents[2]  # the repository
DIGEST_REFERENCE = re.compile(r"^[a-z0-9][a-z0-9._\-/:]*@sha256:[0-9a-f]{64}$")
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti)?$"
NAME = r"^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$"
LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
# CloudWatch Logs accepts only these retention periods.
RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
# API Gateway ends an integration at 30 s: the function must give up first.
HTTP_API_TIMEOUT_SECONDS = 29
# The deploy job ends at 60 minutes (deploy-stack.yml), as does the deploy role's session: the job's
# setup, every step's up and smoke test, and the bakes must fit, with a margin for a rollback.
JOB_MINUTES = 60
SETUP_MINUTES = 8  # checkout, virtualenv, credentials, CLI, deploy order
STEP_MINUTES = 3  # one up (a rollout of pods or a published version) and its smoke test
ROLLBACK_MINUTES = 4
MAX_BAKE_MINUTES = 45
# The image runs TensorFlow: ~550 MiB resident once the model is loaded (`make bench`'s cold start).
IMAGE_MIN_MEMORY_MB = 1024

Runtime = Literal["kubernetes", "lambda"]
SECRET_KEYS = ("kubeconfig",)  # must be set with --secret


FUNCTION_NAME_LIMIT = 64  # Lambda function names
DNS_LABEL_LIMIT = 63  # Kubernetes Service and Namespace names (RFC 1123 labels)
FIREHOSE_NAME_LIMIT = 64  # Firehose stream names
ARCHIVE_STREAM_SUFFIX = "-capture"  # the capture archive's stream: <function name>-capture


class SettingsError(ValueError):
    """A stack setting is wrong; the message names the key and what it accepts."""


class Group(BaseModel):
    """A set of settings one part of the program takes whole. Its config keys stay flat, the group's
    prefix then the field in camelCase (`kubernetesMinReplicas`), so stack files and Pulumi.yaml
    read as the CLI wants them."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
    )


def _check_digest(value: str | None) -> str | None:
    if value and not DIGEST_REFERENCE.match(value):
        raise ValueError("must be an image reference by digest: <registry>/<repository>@sha256:<64 hex>")
    return value or None


class KubernetesSettings(Group):
    """The `kubernetes*` keys: what the KubernetesService component deploys."""

    namespace: str = Field(default="", pattern=NAME + "|^$")
    """Namespace for the serving workload; empty means twinserve-<stack>."""
    min_replicas: int = Field(default=1, ge=1, le=100)
    """Fewest pods the autoscaler keeps."""
    max_replicas: int = Field(default=2, ge=1, le=1000)
    """Most pods the autoscaler may run."""
    target_cpu_percent: int = Field(default=70, ge=10, le=95)
    """Average CPU utilisation the autoscaler aims for."""
    cpu_request: str = Field(default="250m", pattern=QUANTITY)
    """CPU requested per pod (a Kubernetes quantity)."""
    cpu_limit: str = Field(default="1", pattern=QUANTITY)
    """CPU limit per pod."""
    memory_request: str = Field(default="768Mi", pattern=QUANTITY)
    """Memory requested per pod."""
    memory_limit: str = Field(default="1Gi", pattern=QUANTITY)
    """Memory limit per pod (the TensorFlow runtime needs ~600Mi)."""
    workers: int = Field(default=1, ge=1, le=16)
    """Server worker processes per pod (TWINSERVE_WORKERS)."""
    drain_seconds: int = Field(default=5, ge=0, le=120)
    """Seconds a terminating pod stays not-ready but serving, so endpoints drop it first."""
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    """How the Service is exposed."""
    load_balancer_scheme: Literal["internal", "internet-facing"] = "internal"
    """A LoadBalancer's reach: internal to the network by default (the model answers plain HTTP
    without authentication); internet-facing is an explicit choice, refused in prod without
    kubernetesLoadBalancerSourceRanges."""
    load_balancer_source_ranges: tuple[str, ...] = ()
    """CIDRs a LoadBalancer accepts clients from; empty: any."""
    pdb_max_unavailable: int = Field(default=1, ge=1, le=100)
    """Pods a voluntary disruption (a node drain) may take down at once."""
    canary_replicas: int = Field(default=1, ge=1, le=100)
    """Canary pods beside the stable ones while canaryImage is set: its share of traffic is about
    canary / (stable + canary) pods."""
    shadow_replicas: int = Field(default=1, ge=1, le=100)
    """Shadow pods while shadowImage is set (set by the deploy's rollout from rolloutShadowPercent)."""
    gateway: str = Field(
        default="", pattern=r"^([a-z0-9]([a-z0-9-]*[a-z0-9])?/[a-z0-9]([a-z0-9-]*[a-z0-9])?)?$"
    )
    """A Gateway API Gateway (namespace/name) to route clients through: an HTTPRoute weighting the stable
    and canary pods by share rather than by pod count; empty for none."""
    canary_percent: int = Field(default=0, ge=0, le=99)
    """With kubernetesGateway, the HTTPRoute's weight on the canary's pods while canaryImage is set (set
    by the deploy's rollout)."""
    prometheus_rule: bool = False
    """Where the cluster runs the Prometheus Operator: a PodMonitor scraping the model's pods and a
    PrometheusRule alerting on the SLO (alarm* settings) per track, stable and canary."""
    monitoring_labels: tuple[str, ...] = ()
    """key=value labels on the PodMonitor and PrometheusRule, for a Prometheus whose selectors require
    them (kube-prometheus-stack selects release=<its Helm release> by default)."""

    @field_validator("monitoring_labels")
    @classmethod
    def _labels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for label in value:
            key, sep, text = label.partition("=")
            if not sep or not LABEL_KEY.match(key) or not LABEL_VALUE.match(text):
                raise ValueError(f"{label!r} is not a Kubernetes label as key=value")
        return value

    @field_validator("load_balancer_source_ranges")
    @classmethod
    def _cidrs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr)
            except ValueError:
                raise ValueError(f"{cidr!r} is not a CIDR block (e.g. 203.0.113.0/24)") from None
        return value


class LambdaSettings(Group):
    """The `lambda*` keys: what the LambdaService component deploys."""

    image_arm64: str | None = Field(default="", validate_default=True)
    """The image's linux/arm64 manifest by digest, run by an arm64 Lambda image function; set on deploy."""
    image_x86_64: str | None = Field(default="", validate_default=True)
    """The image's linux/amd64 manifest by digest, run by an x86_64 Lambda image function; set on deploy."""
    zip_dir: Path = Path("dist")
    """Directory holding lambda-<architecture>.zip from `make package`, relative to the repository."""
    python_version: Literal["3.12", "3.13"] = "3.12"
    """Lambda's Python for the zip (Amazon Linux 2023 runtimes)."""
    package: Literal["auto", "zip", "image"] = "auto"
    """The function's package: auto (the zip, or the image when `make package` built none), zip or image."""
    package_reason: str = Field(default="", exclude=True)
    """Why `make package` built no zip, when auto chose the image; not a config key."""
    architecture: Literal["arm64", "x86_64"] = "arm64"
    """The function's CPU architecture (arm64 costs 20% less per GB-second)."""
    memory_mb: int = Field(default=512, ge=128, le=10240)
    """Function memory; CPU scales with it."""
    timeout_seconds: int = Field(default=10, ge=1, le=900)
    """Function timeout; below 30 s behind an HTTP API."""
    reserved_concurrency: int = Field(default=10, ge=1, le=1000)
    """Most concurrent executions: a cost and blast-radius cap."""
    provisioned_concurrency: int = Field(default=0, ge=0, le=1000)
    """Pre-initialised executions on the live alias (no cold starts up to this many); 0 for none."""
    endpoint: Literal["function-url", "http-api"] = "function-url"
    """How clients reach the function."""
    function_url_auth: Literal["AWS_IAM", "NONE"] = "AWS_IAM"
    """Function URL authorization; NONE makes it public and must be chosen explicitly."""
    cors_allow_origins: tuple[str, ...] = ()
    """Origins browsers may call the endpoint from."""
    http_api_auth: Literal["AWS_IAM", "NONE"] = "AWS_IAM"
    """Who may call the HTTP API: AWS_IAM (SigV4-signed, as `execute-api`), or NONE (anyone; refused
    in prod by the policy pack)."""
    http_api_rate_limit: int = Field(default=50, ge=1, le=10_000)
    """HTTP API steady-state requests per second."""
    http_api_burst_limit: int = Field(default=100, ge=1, le=5_000)
    """HTTP API burst."""
    log_retention_days: int = 14
    """How long CloudWatch keeps the function's logs."""
    tracing: bool = True
    """X-Ray active tracing."""
    async_dead_letter: bool = False
    """Send failed asynchronous invocations to an SQS queue."""
    stable_version: str = Field(default="", pattern=r"^([1-9][0-9]*)?$")
    """The published version the live alias keeps while a rollout runs (set by the deploy); empty:
    the alias follows each newly published version."""
    canary_percent: int = Field(default=0, ge=0, le=99)
    """Share of the live alias routed to the newly published version beside lambdaStableVersion (set by
    the deploy); 0 keeps every request on lambdaStableVersion."""
    shadow: bool = False
    """A `shadow` alias on the newly published version while live stays on lambdaStableVersion: the
    stable version hands it rolloutShadowPercent of its requests to compare (set by the deploy's shadow
    phase)."""

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in RETENTION_DAYS:
            raise ValueError(f"must be one of {list(RETENTION_DAYS)}")
        return value

    @field_validator("image_arm64", "image_x86_64")
    @classmethod
    def _by_digest(cls, value: str | None) -> str | None:
        return _check_digest(value)

    @property
    def image(self) -> str | None:
        """The manifest for the function's architecture: Lambda refuses a multi-platform index."""
        return self.image_arm64 if self.architecture == "arm64" else self.image_x86_64

    @property
    def zip(self) -> Path:
        """The zip for this environment's architecture; it must exist when the function uses it."""
        directory = self.zip_dir if self.zip_dir.is_absolute() else ROOT / self.zip_dir
        return directory / f"lambda-{self.architecture}.zip"


class RolloutSettings(Group):
    """The `rollout*` keys: how the deploy moves traffic to a new model (infra/delivery/)."""

    strategy: Literal["all-at-once", "canary", "linear"] = "all-at-once"
    """How a deploy moves traffic to the new model: all-at-once (then a bake watched by the alarms),
    canary (rolloutStepPercent for a bake, then all) or linear (steps of rolloutStepPercent, each baked)."""
    step_percent: int = Field(default=10, ge=1, le=50)
    """The new model's share of traffic in a canary, and each step's increase in a linear rollout."""
    bake_minutes: int = Field(default=5, ge=0, le=180)
    """How long each step is watched before the next; a breached SLO rolls both runtimes back."""
    shadow_minutes: int = Field(default=0, ge=0, le=180)
    """A shadow phase this long before the first step: the new model (Kubernetes: shadow pods; Lambda:
    the new version's `shadow` alias) answers a sampled share of the stable side's requests, handed
    over after the stable answer, and is failed when its top classes disagree (alarmMaxDisagreement);
    no client sees its answers. 0: no shadow phase (and no shadow Service or invoke right)."""
    shadow_percent: int = Field(default=10, ge=1, le=100)
    """The share of the stable side's inference requests mirrored to the shadow."""


class Slo(Group):
    """The `alarm*` keys: the thresholds every runtime's alarms and the canary analysis hold the new
    model to (`infra/program/slo.py` renders them for Prometheus)."""

    error_ratio: float = Field(default=0.01, gt=0, le=1)
    """SLO: 5xx answers (Lambda: errors) over all answers above which the new model is unhealthy."""
    throttle_ratio: float = Field(default=0.05, gt=0, le=1)
    """SLO: throttled requests (429, Lambda throttles) over all requests above which it is unhealthy."""
    p99_ms: int = Field(default=1000, ge=1, le=900_000)
    """SLO: p99 latency (Lambda: p99 duration) in milliseconds above which it is unhealthy."""
    max_disagreement: float = Field(default=0.05, ge=0, le=1)
    """Shadow: share of mirrored rows whose top class the new model changes that fails it."""
    prediction_mix_psi: float = Field(default=0.2, gt=0, le=10)
    """Canary (Kubernetes): PSI of the new model's top-class shares against stable's that rolls it back."""


class TrafficSettings(Group):
    """The `traffic*` keys: the load the cost comparison (infra/compare/) prices."""

    requests_per_month: int = Field(default=1_000_000, ge=0, le=10**12)
    """Expected requests per month, for the cost comparison."""
    peak_rps: int = Field(default=5, ge=0, le=10**6)
    """Expected peak requests per second, for the cost comparison and scaling bounds."""


CAPTURE_FIELD = re.compile(r"^(inputs|outputs)(\.[^,\s]+)?$")


class CaptureSettings(Group):
    """The `capture*` keys: payload capture on both runtimes (serving/capture.py), off unless set.
    Records go to each runtime's log stream: the function's log group (its retention, lambdaLogRetentionDays)
    and the pods' stdout (the cluster's log pipeline)."""

    sample_rate: float = Field(default=0.0, ge=0, le=1)
    """Share of inference requests recorded with their inputs and outputs (0: capture off)."""
    fields: list[str] = Field(default=["inputs", "outputs"])
    """What a record holds: inputs, outputs, or single tensors as inputs.<name> and outputs.<name>."""
    max_record_bytes: int = Field(default=16384, ge=1024, le=262144)
    """A record larger than this keeps its tensors' names and shapes, not their values (16 KiB: one
    line of the container log, whole)."""
    archive: bool = False
    """Also copy the function's records to the environment's capture bucket (S3, KMS-encrypted, expired
    after the bootstrap's captureArchiveDays) under <modelName>/records/, through a Firehose stream."""

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, value: list[str]) -> list[str]:
        wrong = [item for item in value if not CAPTURE_FIELD.match(item)]
        if wrong:
            raise ValueError(f"{wrong} are not inputs, outputs, inputs.<name> or outputs.<name>")
        return value

    def environment(self) -> dict[str, str]:
        """The servers' TWINSERVE_CAPTURE_* variables; none while capture is off, so turning it on
        or off is the only change it makes to a pod or a function."""
        if self.sample_rate == 0:
            return {}
        return {
            "TWINSERVE_CAPTURE_SAMPLE_RATE": f"{self.sample_rate:g}",
            "TWINSERVE_CAPTURE_FIELDS": ",".join(self.fields),
            "TWINSERVE_CAPTURE_MAX_RECORD_BYTES": str(self.max_record_bytes),
        }


# Each group's field in Settings and the prefix of its keys.
GROUP_PREFIXES = {
    "kubernetes": "kubernetes",
    "function": "lambda",
    "rollout": "rollout",
    "slo": "alarm",
    "traffic": "traffic",
    "capture": "capture",
}


def key_of(prefix: str, field: str) -> str:
    """A group's field as its config key: `kubernetes` + `min_replicas` → `kubernetesMinReplicas`."""
    camel = to_camel(field)
    return prefix + camel[0].upper() + camel[1:]


class Settings(Group):
    """Everything the program deploys from: the keys every part shares, then one group per part.

    Defaults live here; `infra/program/schema.py` writes them, with each docstring, into Pulumi.yaml.
    """

    stack: str = Field(pattern=NAME, exclude=True)
    """The Pulumi stack, i.e. the environment (dev, staging, prod); not a config key."""
    runtimes: list[Runtime] = Field(default=["kubernetes", "lambda"], min_length=1)
    """Which runtimes this environment deploys: kubernetes, lambda, or both."""
    model_name: str = Field(default="iris", pattern=NAME)
    """The model served; names the namespace, the function and their labels."""
    model_version: int = Field(default=1, ge=1)
    """The model version the image and the zip carry; reported in outputs and labels."""
    image: str | None = Field(default="", validate_default=True)
    """The model image by digest (registry/repo@sha256:…); set by the deploy workflow; empty for none."""
    canary_image: str | None = Field(default="", validate_default=True)
    """A new model image (by digest) run as a canary beside the stable pods, behind the same Service;
    empty for none. Promote by making it `image` and emptying this; discard by emptying this."""
    shadow_image: str | None = Field(default="", validate_default=True)
    """A new model image (by digest) run as shadow pods, outside the Service, that the stable pods
    mirror rolloutShadowPercent of their requests to; set by the deploy's shadow phase; empty for none."""
    commit: str = Field(default="", pattern=r"^([0-9a-f]{40})?$")
    """The commit of main deployed; set by the deploy workflow, which never deploys an older one over it."""
    kubeconfig: str = ""
    """A kubeconfig for the target cluster, set with --secret; empty means the ambient context."""

    kubernetes: KubernetesSettings = KubernetesSettings()
    function: LambdaSettings = LambdaSettings()
    rollout: RolloutSettings = RolloutSettings()
    slo: Slo = Slo()
    traffic: TrafficSettings = TrafficSettings()
    capture: CaptureSettings = CaptureSettings()

    @field_validator("image", "canary_image", "shadow_image")
    @classmethod
    def _by_digest(cls, value: str | None) -> str | None:
        return _check_digest(value)

    @field_validator("runtimes")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("lists a runtime twice")
        return value

    @model_validator(mode="before")
    @classmethod
    def _default_namespace(cls, data: Any) -> Any:
        """An empty kubernetesNamespace is twinserve-<stack>, so every check below sees the name used."""
        if isinstance(data, dict) and isinstance(data.get("stack"), str):
            group = dict(data.get("kubernetes") or {})
            if not group.get("namespace"):
                data = {**data, "kubernetes": {**group, "namespace": f"{PROJECT}-{data['stack']}"}}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        for problem in self._problems():
            raise ValueError(problem)
        return self

    @property
    def function_name(self) -> str:
        """The Lambda function (and the prefix of its log group, queue, alarms and role)."""
        return f"{PROJECT}-{self.model_name}-{self.stack}"

    @property
    def uses_lambda_image(self) -> bool:
        return "lambda" in self.runtimes and self.function.package == "image"

    def config(self) -> dict[str, Any]:
        """The settings as flat config keys (`kubernetesMinReplicas`), the inverse of `from_config`."""
        dumped = self.model_dump(mode="json")
        return {
            key: dumped[name] if group is None else dumped[group][name]
            for key, (group, name, _) in KEYS.items()
        }

    def _name_problems(self) -> list[str]:
        """Names derived from modelName (and the stack) that would pass a limit where they are used:
        refused here, by key, instead of failing the preview or the up."""
        limits = [(self.function_name, FUNCTION_NAME_LIMIT, "the Lambda function name")]
        if "kubernetes" in self.runtimes:
            for track in ("canary", "stable"):
                limits.append((f"{self.model_name}-{track}", DNS_LABEL_LIMIT, f"the {track} Service name"))
            limits.append((self.kubernetes.namespace, DNS_LABEL_LIMIT, "kubernetesNamespace"))
        return [
            f"modelName {self.model_name!r} makes {what} {name!r} {len(name)} characters long, more than "
            f"the {limit} allowed: choose a shorter modelName"
            for name, limit, what in limits
            if len(name) > limit
        ]

    def _capture_problems(self) -> list[str]:
        if not self.capture.archive:
            return []
        problems = []
        if self.capture.sample_rate == 0:
            problems.append("captureArchive is set, but captureSampleRate is 0: there is nothing to archive")
        if "lambda" not in self.runtimes:
            problems.append(
                "captureArchive copies the function's records, but this environment does not deploy the "
                "lambda runtime (pods' records go to the cluster's log pipeline)"
            )
        stream = f"{self.function_name}{ARCHIVE_STREAM_SUFFIX}"
        if len(stream) > FIREHOSE_NAME_LIMIT:
            problems.append(
                f"modelName {self.model_name!r} makes the capture archive's Firehose stream {stream!r} "
                f"{len(stream)} characters long, more than the {FIREHOSE_NAME_LIMIT} allowed: choose a "
                "shorter modelName"
            )
        return problems

    def _problems(self) -> list[str]:
        problems = self._name_problems() + self._capture_problems()
        kubernetes, function = self.kubernetes, self.function
        if kubernetes.min_replicas > kubernetes.max_replicas:
            problems.append("kubernetesMinReplicas must not exceed kubernetesMaxReplicas")
        if function.provisioned_concurrency > function.reserved_concurrency:
            problems.append("lambdaProvisionedConcurrency must not exceed lambdaReservedConcurrency")
        if function.endpoint == "http-api" and function.timeout_seconds > HTTP_API_TIMEOUT_SECONDS:
            problems.append(
                f"lambdaTimeoutSeconds must be at most {HTTP_API_TIMEOUT_SECONDS} behind an HTTP API"
            )
        if self.image is None and ("kubernetes" in self.runtimes or self.uses_lambda_image):
            problems.append("image is not set: the deploy workflow sets it to the pushed image's digest")
        if self.uses_lambda_image and function.image is None:
            key = key_of("lambda", f"image_{function.architecture}")
            problems.append(
                f"{key} is not set: a Lambda image function runs one platform's manifest, not the "
                f"multi-platform image; the deploy workflow sets it from the pushed image"
            )
        return problems + self._rollout_problems()

    def _rollout_problems(self) -> list[str]:
        """A rollout's inputs (set by the deploy) naming a runtime this environment lacks, or a share
        without the stable side it is beside."""
        problems = []
        if self.canary_image and "kubernetes" not in self.runtimes:
            problems.append("canaryImage is set, but this environment does not deploy the kubernetes runtime")
        if self.kubernetes.canary_percent and not (self.canary_image and self.kubernetes.gateway):
            problems.append(
                "kubernetesCanaryPercent weights a Gateway route: it needs canaryImage and kubernetesGateway"
            )
        if self.kubernetes.gateway and "kubernetes" not in self.runtimes:
            problems.append(
                "kubernetesGateway is set, but this environment does not deploy the kubernetes runtime"
            )
        if self.canary_image and self.canary_image == self.image:
            problems.append("canaryImage is the stable image: empty it (promoted) or give a new one")
        problems += self._shadow_problems()
        problems += self._rollout_time_problems()
        if self.function.canary_percent and not self.function.stable_version:
            problems.append(
                "lambdaCanaryPercent is set, but lambdaStableVersion (the version beside it) is not"
            )
        if self.function.stable_version and "lambda" not in self.runtimes:
            problems.append(
                "lambdaStableVersion is set, but this environment does not deploy the lambda runtime"
            )
        return problems

    def _shadow_problems(self) -> list[str]:
        """A shadow needs its Service (rolloutShadowMinutes) and the stable side it mirrors from."""
        if self.function.shadow and not (self.function.stable_version and self.rollout.shadow_minutes):
            return ["lambdaShadow is set, but lambdaStableVersion or rolloutShadowMinutes is not"]
        if self.function.shadow and self.function.canary_percent:
            return [
                "lambdaShadow and lambdaCanaryPercent are both set: the shadow phase comes before the canary"
            ]
        if not self.shadow_image:
            return []
        if "kubernetes" not in self.runtimes:
            return ["shadowImage is set, but this environment does not deploy the kubernetes runtime"]
        if not self.rollout.shadow_minutes:
            return ["shadowImage is set, but rolloutShadowMinutes is 0: this environment has no shadow phase"]
        if self.shadow_image == self.image:
            return ["shadowImage is the stable image: empty it (promoted) or give a new one"]
        if self.canary_image:
            return [
                "shadowImage and canaryImage are both set: a rollout runs its shadow phase before its canary"
            ]
        return []

    def _rollout_time_problems(self) -> list[str]:
        """The rollout must finish inside the deploy job (and the deploy role's one-hour session)."""
        rollout = self.rollout
        bakes = {"canary": 1, "linear": len(range(rollout.step_percent, 100, rollout.step_percent))}
        shadow = rollout.shadow_minutes > 0
        baking = bakes.get(rollout.strategy, 1) * rollout.bake_minutes + rollout.shadow_minutes * shadow
        steps = bakes.get(rollout.strategy, 0) + 1 + shadow
        needed = SETUP_MINUTES + steps * STEP_MINUTES + baking + ROLLBACK_MINUTES
        named = f"a {rollout.strategy} rollout of rolloutStepPercent {rollout.step_percent}"
        if shadow:
            named += f" after rolloutShadowMinutes {rollout.shadow_minutes}"
        if baking > MAX_BAKE_MINUTES:
            return [
                f"{named} baked rolloutBakeMinutes {rollout.bake_minutes} bakes {baking} minutes, "
                f"more than the {MAX_BAKE_MINUTES} the deploy job allows: bake less or take larger steps"
            ]
        if needed > JOB_MINUTES:
            return [
                f"{named} takes about {needed} minutes ({steps} ups and smoke tests of ~{STEP_MINUTES}, "
                f"{baking} baking, {SETUP_MINUTES} setup, {ROLLBACK_MINUTES} for a rollback), more than the "
                f"deploy job's {JOB_MINUTES}: bake less or take larger steps"
            ]
        return []


def config_type(annotation: Any) -> str:
    """The Pulumi config type of a field: string, integer, boolean or array."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return config_type(next(a for a in typing.get_args(annotation) if a is not type(None)))
    if origin in (list, tuple):
        return "array"
    if origin is Literal:
        return config_type(type(typing.get_args(annotation)[0]))
    return {bool: "boolean", int: "integer"}.get(annotation, "string")


def _keys() -> dict[str, tuple[str | None, str, FieldInfo]]:
    """Every config key → (its group's field in Settings, or None for a shared key; its field; the field)."""
    keys: dict[str, tuple[str | None, str, FieldInfo]] = {}
    for name, field in Settings.model_fields.items():
        if name in GROUP_PREFIXES:
            group = typing.cast(type[Group], field.annotation)
            for inner, info in group.model_fields.items():
                if not info.exclude:
                    keys[key_of(GROUP_PREFIXES[name], inner)] = (name, inner, info)
        elif not field.exclude:
            keys[typing.cast(str, field.alias)] = (None, name, field)
    return dict(sorted(keys.items(), key=lambda item: _ORDER.index(item[1][0])))


_ORDER = [None, *GROUP_PREFIXES]  # the schema lists the shared keys, then each group's
KEYS = _keys()
FIELDS = {key: info for key, (_, _, info) in KEYS.items()}
# A validation error's location (aliases) → the key it is about.
LOCATIONS = {
    (to_camel(group), to_camel(name)) if group else (to_camel(name),): key
    for key, (group, name, _) in KEYS.items()
}
PACKAGE_DECISION = "lambda-package.json"  # written by `make package` (serving/tools/packaging/decision.py)


def _value(key: str, raw: str) -> Any:
    """The CLI passes every value as a string: arrays, numbers and booleans as JSON, strings as they are."""
    if key not in FIELDS or config_type(FIELDS[key].annotation) == "string":
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _nested(flat: dict[str, Any]) -> dict[str, Any]:
    """Flat keys (`kubernetesMinReplicas`) into the groups' shape (`kubernetes.minReplicas`)."""
    data: dict[str, Any] = {}
    for key, value in flat.items():
        group, name, _ = KEYS[key]
        if group is None:
            data[to_camel(name)] = value
        else:
            data.setdefault(to_camel(group), {})[to_camel(name)] = value
    return data


def stack_config(stack_file: Path, project: str, overrides: dict[str, Any] | None = None) -> dict[str, str]:
    """A stack file's config as the CLI hands it over: `<project>:<key>` → string (JSON unless a str)."""
    if not stack_file.is_file():
        raise FileNotFoundError(f"no stack file {stack_file}")
    values = (yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}
    values |= overrides or {}
    qualified = {(k if ":" in k else f"{project}:{k}"): v for k, v in values.items()}
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in qualified.items()}


def from_config(values: dict[str, str], stack: str, *, check_files: bool = True) -> Settings:
    """Validate `<project>:<key>` strings; name each unknown key and each bad value with what it accepts."""
    ours = {k.split(":", 1)[1]: v for k, v in values.items() if k.startswith(f"{PROJECT}:")}
    known = set(FIELDS)
    unknown = sorted(set(ours) - known)
    if unknown:
        raise SettingsError(
            f"unknown setting(s) {[f'{PROJECT}:{k}' for k in unknown]}; known: {sorted(known)}"
        )
    data = _nested({key: _value(key, raw) for key, raw in ours.items()})
    try:
        settings = Settings.model_validate({**data, "stack": stack})
    except ValidationError as error:
        raise SettingsError(_describe(error)) from None
    settings = _resolve_package(settings, check_files)
    function = settings.function
    if settings.uses_lambda_image and function.memory_mb < IMAGE_MIN_MEMORY_MB:
        why = f" ({function.package_reason})" if function.package_reason else ""
        raise SettingsError(
            f"{PROJECT}:lambdaMemoryMb: {function.memory_mb} is too little for the model image{why}: "
            f"TensorFlow needs about 550 MiB; set at least {IMAGE_MIN_MEMORY_MB}"
        )
    zip_needed = check_files and "lambda" in settings.runtimes and settings.function.package == "zip"
    if zip_needed and not settings.function.zip.is_file():
        raise SettingsError(
            f"{PROJECT}:lambdaZipDir: {settings.function.zip} does not exist (run `make package`)"
        )
    return settings


# Stands in for the images a deploy sets where none is deployed: settings only read (the cost
# comparison, the canary's thresholds) and the offline plan (the digest exists once the image is pushed).
ANY_IMAGE = "registry.invalid/twinserve@sha256:" + "0" * 64
READ_ONLY = {"image": ANY_IMAGE, "lambdaImageArm64": ANY_IMAGE, "lambdaImageX8664": ANY_IMAGE}


def read_environment(name: str, overrides: dict[str, Any] | None = None) -> Settings:
    """environments/Pulumi.<name>.yaml's settings for reading: images stood in for, files unchecked."""
    stack_file = ROOT / "environments" / f"Pulumi.{name}.yaml"
    return from_config(
        stack_config(stack_file, PROJECT, READ_ONLY | (overrides or {})), name, check_files=False
    )


def _package_decision(settings: Settings) -> dict[str, str] | None:
    """What `make package` decided (lambda-package.json beside the zips), if it has run."""
    path = settings.function.zip.with_name(PACKAGE_DECISION)
    try:
        decision = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise SettingsError(
            f"{PROJECT}:lambdaZipDir: {path} is unreadable ({error}); run `make package`"
        ) from None
    if not isinstance(decision, dict) or decision.get("package") not in ("zip", "image"):
        raise SettingsError(f"{PROJECT}:lambdaZipDir: {path} names no package; run `make package`")
    return decision


def _resolve_package(settings: Settings, check_files: bool) -> Settings:
    """`auto` becomes what `make package` decided; `zip` is refused when it built none, with its reason."""
    function = settings.function
    if "lambda" not in settings.runtimes or function.package == "image":
        return settings
    decision = _package_decision(settings)
    if decision is None:  # the zip check below names what is missing
        chosen = function.model_copy(update={"package": "zip"})
    elif function.package == "zip" and decision["package"] == "image":
        reason = decision.get("reason", "")
        raise SettingsError(f"{PROJECT}:lambdaPackage is zip, but `make package` built none: {reason}")
    else:
        update = {"package": decision["package"], "package_reason": decision.get("reason", "")}
        chosen = function.model_copy(update=update)
    return settings.model_copy(update={"function": chosen})


def _describe(error: ValidationError) -> str:
    lines = []
    for problem in error.errors():
        loc = problem["loc"]
        # The key the location is in, then any item within it (`runtimes.1`).
        n = next((n for n in range(len(loc), 0, -1) if loc[:n] in LOCATIONS), 0)
        key = ".".join(([LOCATIONS[loc[:n]]] if n else []) + [str(part) for part in loc[n:]])
        where = f"{PROJECT}:{key}" if key else "settings"
        given = f" (got {problem['input']!r})" if key and problem["type"] != "missing" else ""
        message = "is required" if problem["type"] == "missing" else problem["msg"]
        lines.append(f"{where}: {message.removeprefix('Value error, ')}{given}")
    return "; ".join(lines)


def check_secrets(values: dict[str, str], is_secret: Callable[[str], bool]) -> None:
    """Pulumi.yaml cannot mark these keys `secret` (the CLI refuses a default on a secret key, and
    requires any key without one), so the program refuses them in plaintext instead."""
    for key in SECRET_KEYS:
        qualified = f"{PROJECT}:{key}"
        if values.get(qualified) and not is_secret(qualified):
            raise SettingsError(
                f"{qualified} is stored in plaintext; set it with `pulumi config set --secret {key} …`"
            )


def load() -> Settings:
    """The running stack's settings, from the config the Pulumi engine handed this program."""
    import pulumi
    from pulumi.runtime.config import CONFIG, get_config_env, is_config_secret

    values = {**get_config_env(), **CONFIG.get()}
    check_secrets(values, is_config_secret)
    return from_config(values, pulumi.get_stack())
