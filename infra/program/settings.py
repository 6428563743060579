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

from program.slo import Slo

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


class SettingsError(ValueError):
    """A stack setting is wrong; the message names the key and what it accepts."""


class Settings(BaseModel):
    """Everything the program deploys from; the config keys are the field names in camelCase.

    Defaults live here; `infra/program/schema.py` writes them, with each docstring, into Pulumi.yaml.
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
    )

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
    lambda_image_arm64: str | None = Field(default="", validate_default=True)
    """The image's linux/arm64 manifest by digest, run by an arm64 Lambda image function; set on deploy."""
    lambda_image_x86_64: str | None = Field(default="", validate_default=True)
    """The image's linux/amd64 manifest by digest, run by an x86_64 Lambda image function; set on deploy."""
    commit: str = Field(default="", pattern=r"^([0-9a-f]{40})?$")
    """The commit of main deployed; set by the deploy workflow, which never deploys an older one over it."""
    lambda_zip_dir: Path = Path("dist")
    """Directory holding lambda-<architecture>.zip from `make package`, relative to the repository."""
    lambda_python_version: Literal["3.12", "3.13"] = "3.12"
    """Lambda's Python for the zip (Amazon Linux 2023 runtimes)."""

    kubernetes_namespace: str = Field(default="", pattern=NAME + "|^$")
    """Namespace for the serving workload; empty means twinserve-<stack>."""
    kubernetes_min_replicas: int = Field(default=1, ge=1, le=100)
    """Fewest pods the autoscaler keeps."""
    kubernetes_max_replicas: int = Field(default=2, ge=1, le=1000)
    """Most pods the autoscaler may run."""
    kubernetes_target_cpu_percent: int = Field(default=70, ge=10, le=95)
    """Average CPU utilisation the autoscaler aims for."""
    kubernetes_cpu_request: str = Field(default="250m", pattern=QUANTITY)
    """CPU requested per pod (a Kubernetes quantity)."""
    kubernetes_cpu_limit: str = Field(default="1", pattern=QUANTITY)
    """CPU limit per pod."""
    kubernetes_memory_request: str = Field(default="768Mi", pattern=QUANTITY)
    """Memory requested per pod."""
    kubernetes_memory_limit: str = Field(default="1Gi", pattern=QUANTITY)
    """Memory limit per pod (the TensorFlow runtime needs ~600Mi)."""
    kubernetes_workers: int = Field(default=1, ge=1, le=16)
    """Server worker processes per pod (TWINSERVE_WORKERS)."""
    kubernetes_drain_seconds: int = Field(default=5, ge=0, le=120)
    """Seconds a terminating pod stays not-ready but serving, so endpoints drop it first."""
    kubernetes_service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    """How the Service is exposed."""
    kubernetes_load_balancer_scheme: Literal["internal", "internet-facing"] = "internal"
    """A LoadBalancer's reach: internal to the network by default (the model answers plain HTTP
    without authentication); internet-facing is an explicit choice, refused in prod without
    kubernetesLoadBalancerSourceRanges."""
    kubernetes_load_balancer_source_ranges: list[str] = []
    """CIDRs a LoadBalancer accepts clients from; empty: any."""
    kubernetes_pdb_max_unavailable: int = Field(default=1, ge=1, le=100)
    """Pods a voluntary disruption (a node drain) may take down at once."""
    kubernetes_canary_replicas: int = Field(default=1, ge=1, le=100)
    """Canary pods beside the stable ones while canaryImage is set: its share of traffic is about
    canary / (stable + canary) pods."""
    kubernetes_gateway: str = Field(
        default="", pattern=r"^([a-z0-9]([a-z0-9-]*[a-z0-9])?/[a-z0-9]([a-z0-9-]*[a-z0-9])?)?$"
    )
    """A Gateway API Gateway (namespace/name) to route clients through: an HTTPRoute weighting the stable
    and canary pods by share rather than by pod count; empty for none."""
    kubernetes_canary_percent: int = Field(default=0, ge=0, le=99)
    """With kubernetesGateway, the HTTPRoute's weight on the canary's pods while canaryImage is set (set
    by the deploy's rollout)."""
    kubernetes_prometheus_rule: bool = False
    """Where the cluster runs the Prometheus Operator: a PodMonitor scraping the model's pods and a
    PrometheusRule alerting on the SLO (alarm* settings) per track, stable and canary."""
    kubernetes_monitoring_labels: list[str] = []
    """key=value labels on the PodMonitor and PrometheusRule, for a Prometheus whose selectors require
    them (kube-prometheus-stack selects release=<its Helm release> by default)."""
    kubeconfig: str = ""
    """A kubeconfig for the target cluster, set with --secret; empty means the ambient context."""

    lambda_package: Literal["auto", "zip", "image"] = "auto"
    """The function's package: auto (the zip, or the image when `make package` built none), zip or image."""
    lambda_package_reason: str = Field(default="", exclude=True)
    """Why `make package` built no zip, when auto chose the image; not a config key."""
    lambda_architecture: Literal["arm64", "x86_64"] = "arm64"
    """The function's CPU architecture (arm64 costs 20% less per GB-second)."""
    lambda_memory_mb: int = Field(default=512, ge=128, le=10240)
    """Function memory; CPU scales with it."""
    lambda_timeout_seconds: int = Field(default=10, ge=1, le=900)
    """Function timeout; below 30 s behind an HTTP API."""
    lambda_reserved_concurrency: int = Field(default=10, ge=1, le=1000)
    """Most concurrent executions: a cost and blast-radius cap."""
    lambda_provisioned_concurrency: int = Field(default=0, ge=0, le=1000)
    """Pre-initialised executions on the live alias (no cold starts up to this many); 0 for none."""
    lambda_endpoint: Literal["function-url", "http-api"] = "function-url"
    """How clients reach the function."""
    lambda_function_url_auth: Literal["AWS_IAM", "NONE"] = "AWS_IAM"
    """Function URL authorization; NONE makes it public and must be chosen explicitly."""
    lambda_cors_allow_origins: list[str] = []
    """Origins browsers may call the endpoint from."""
    lambda_http_api_auth: Literal["AWS_IAM", "NONE"] = "AWS_IAM"
    """Who may call the HTTP API: AWS_IAM (SigV4-signed, as `execute-api`), or NONE (anyone; refused
    in prod by the policy pack)."""
    lambda_http_api_rate_limit: int = Field(default=50, ge=1, le=10_000)
    """HTTP API steady-state requests per second."""
    lambda_http_api_burst_limit: int = Field(default=100, ge=1, le=5_000)
    """HTTP API burst."""
    lambda_log_retention_days: int = 14
    """How long CloudWatch keeps the function's logs."""
    lambda_tracing: bool = True
    """X-Ray active tracing."""
    lambda_async_dead_letter: bool = False
    """Send failed asynchronous invocations to an SQS queue."""

    rollout_strategy: Literal["all-at-once", "canary", "linear"] = "all-at-once"
    """How a deploy moves traffic to the new model: all-at-once (then a bake watched by the alarms),
    canary (rolloutStepPercent for a bake, then all) or linear (steps of rolloutStepPercent, each baked)."""
    rollout_step_percent: int = Field(default=10, ge=1, le=50)
    """The new model's share of traffic in a canary, and each step's increase in a linear rollout."""
    rollout_bake_minutes: int = Field(default=5, ge=0, le=180)
    """How long each step is watched before the next; a breached SLO rolls both runtimes back."""
    lambda_stable_version: str = Field(default="", pattern=r"^([1-9][0-9]*)?$")
    """The published version the live alias keeps while a rollout runs (set by the deploy); empty:
    the alias follows each newly published version."""
    lambda_canary_percent: int = Field(default=0, ge=0, le=99)
    """Share of the live alias routed to the newly published version beside lambdaStableVersion (set by
    the deploy); 0 keeps every request on lambdaStableVersion."""

    alarm_error_ratio: float = Field(default=0.01, gt=0, le=1)
    """SLO: 5xx answers (Lambda: errors) over all answers above which the new model is unhealthy."""
    alarm_throttle_ratio: float = Field(default=0.05, gt=0, le=1)
    """SLO: throttled requests (429, Lambda throttles) over all requests above which it is unhealthy."""
    alarm_p99_ms: int = Field(default=1000, ge=1, le=900_000)
    """SLO: p99 latency (Lambda: p99 duration) in milliseconds above which it is unhealthy."""

    traffic_requests_per_month: int = Field(default=1_000_000, ge=0, le=10**12)
    """Expected requests per month, for the cost comparison."""
    traffic_peak_rps: int = Field(default=5, ge=0, le=10**6)
    """Expected peak requests per second, for the cost comparison and scaling bounds."""

    @field_validator("lambda_log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in RETENTION_DAYS:
            raise ValueError(f"must be one of {list(RETENTION_DAYS)}")
        return value

    @field_validator("image", "canary_image", "lambda_image_arm64", "lambda_image_x86_64")
    @classmethod
    def _by_digest(cls, value: str | None) -> str | None:
        if value and not DIGEST_REFERENCE.match(value):
            raise ValueError("must be an image reference by digest: <registry>/<repository>@sha256:<64 hex>")
        return value or None

    @field_validator("kubernetes_monitoring_labels")
    @classmethod
    def _labels(cls, value: list[str]) -> list[str]:
        for label in value:
            key, sep, text = label.partition("=")
            if not sep or not LABEL_KEY.match(key) or not LABEL_VALUE.match(text):
                raise ValueError(f"{label!r} is not a Kubernetes label as key=value")
        return value

    @field_validator("runtimes")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("lists a runtime twice")
        return value

    @field_validator("kubernetes_load_balancer_source_ranges")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr)
            except ValueError:
                raise ValueError(f"{cidr!r} is not a CIDR block (e.g. 203.0.113.0/24)") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        for problem in self._problems():
            raise ValueError(problem)
        return self

    @property
    def slo(self) -> Slo:
        """What every runtime's alarms and the canary analysis hold the new model to."""
        return Slo(self.alarm_error_ratio, self.alarm_throttle_ratio, self.alarm_p99_ms)

    @classmethod
    def default_slo(cls) -> Slo:
        """The SLO of a stack that sets no alarm* key: the one place its defaults are written."""
        field = cls.model_fields
        return Slo(
            field["alarm_error_ratio"].default,
            field["alarm_throttle_ratio"].default,
            field["alarm_p99_ms"].default,
        )

    @property
    def function_name(self) -> str:
        """The Lambda function (and the prefix of its log group, queue, alarms and role)."""
        return f"{PROJECT}-{self.model_name}-{self.stack}"

    def _name_problems(self) -> list[str]:
        """Names derived from modelName (and the stack) that would pass a limit where they are used:
        refused here, by key, instead of failing the preview or the up."""
        limits = [(self.function_name, FUNCTION_NAME_LIMIT, "the Lambda function name")]
        if "kubernetes" in self.runtimes:
            for track in ("canary", "stable"):
                limits.append((f"{self.model_name}-{track}", DNS_LABEL_LIMIT, f"the {track} Service name"))
            limits.append((self.kubernetes_namespace, DNS_LABEL_LIMIT, "kubernetesNamespace"))
        return [
            f"modelName {self.model_name!r} makes {what} {name!r} {len(name)} characters long, more than "
            f"the {limit} allowed: choose a shorter modelName"
            for name, limit, what in limits
            if len(name) > limit
        ]

    def _problems(self) -> list[str]:
        problems = self._name_problems()
        if self.kubernetes_min_replicas > self.kubernetes_max_replicas:
            problems.append("kubernetesMinReplicas must not exceed kubernetesMaxReplicas")
        if self.lambda_provisioned_concurrency > self.lambda_reserved_concurrency:
            problems.append("lambdaProvisionedConcurrency must not exceed lambdaReservedConcurrency")
        if self.lambda_endpoint == "http-api" and self.lambda_timeout_seconds > HTTP_API_TIMEOUT_SECONDS:
            problems.append(
                f"lambdaTimeoutSeconds must be at most {HTTP_API_TIMEOUT_SECONDS} behind an HTTP API"
            )
        if self.image is None and ("kubernetes" in self.runtimes or self.uses_lambda_image):
            problems.append("image is not set: the deploy workflow sets it to the pushed image's digest")
        if self.uses_lambda_image and self.lambda_image is None:
            key = to_camel(f"lambda_image_{self.lambda_architecture}")
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
        if self.kubernetes_canary_percent and not (self.canary_image and self.kubernetes_gateway):
            problems.append(
                "kubernetesCanaryPercent weights a Gateway route: it needs canaryImage and kubernetesGateway"
            )
        if self.kubernetes_gateway and "kubernetes" not in self.runtimes:
            problems.append(
                "kubernetesGateway is set, but this environment does not deploy the kubernetes runtime"
            )
        if self.canary_image and self.canary_image == self.image:
            problems.append("canaryImage is the stable image: empty it (promoted) or give a new one")
        problems += self._rollout_time_problems()
        if self.lambda_canary_percent and not self.lambda_stable_version:
            problems.append(
                "lambdaCanaryPercent is set, but lambdaStableVersion (the version beside it) is not"
            )
        if self.lambda_stable_version and "lambda" not in self.runtimes:
            problems.append(
                "lambdaStableVersion is set, but this environment does not deploy the lambda runtime"
            )
        return problems

    def _rollout_time_problems(self) -> list[str]:
        """The rollout must finish inside the deploy job (and the deploy role's one-hour session)."""
        bakes = {"canary": 1, "linear": len(range(self.rollout_step_percent, 100, self.rollout_step_percent))}
        baking = bakes.get(self.rollout_strategy, 1) * self.rollout_bake_minutes
        steps = bakes.get(self.rollout_strategy, 0) + 1
        needed = SETUP_MINUTES + steps * STEP_MINUTES + baking + ROLLBACK_MINUTES
        rollout = f"a {self.rollout_strategy} rollout of rolloutStepPercent {self.rollout_step_percent}"
        if baking > MAX_BAKE_MINUTES:
            return [
                f"{rollout} baked rolloutBakeMinutes {self.rollout_bake_minutes} bakes {baking} minutes, "
                f"more than the {MAX_BAKE_MINUTES} the deploy job allows: bake less or take larger steps"
            ]
        if needed > JOB_MINUTES:
            return [
                f"{rollout} takes about {needed} minutes ({steps} ups and smoke tests of ~{STEP_MINUTES}, "
                f"{baking} baking, {SETUP_MINUTES} setup, {ROLLBACK_MINUTES} for a rollback), more than the "
                f"deploy job's {JOB_MINUTES}: bake less or take larger steps"
            ]
        return []

    @property
    def lambda_image(self) -> str | None:
        """The manifest for the function's architecture: Lambda refuses a multi-platform index."""
        return self.lambda_image_arm64 if self.lambda_architecture == "arm64" else self.lambda_image_x86_64

    @property
    def uses_lambda_image(self) -> bool:
        return "lambda" in self.runtimes and self.lambda_package == "image"

    @property
    def lambda_zip(self) -> Path:
        """The zip for this environment's architecture; it must exist when the function uses it."""
        directory = self.lambda_zip_dir if self.lambda_zip_dir.is_absolute() else ROOT / self.lambda_zip_dir
        return directory / f"lambda-{self.lambda_architecture}.zip"


def config_type(annotation: Any) -> str:
    """The Pulumi config type of a field: string, integer, boolean or array."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return config_type(next(a for a in typing.get_args(annotation) if a is not type(None)))
    if origin is list:
        return "array"
    if origin is Literal:
        return config_type(type(typing.get_args(annotation)[0]))
    return {bool: "boolean", int: "integer"}.get(annotation, "string")


FIELDS = {
    f.alias: f for name, f in Settings.model_fields.items() if name not in ("stack", "lambda_package_reason")
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
    data = {key: _value(key, raw) for key, raw in ours.items()}
    try:
        settings = Settings.model_validate({**data, "stack": stack})
    except ValidationError as error:
        raise SettingsError(_describe(error)) from None
    if not settings.kubernetes_namespace:
        settings = settings.model_copy(update={"kubernetes_namespace": f"{PROJECT}-{stack}"})
    settings = _resolve_package(settings, check_files)
    if settings.uses_lambda_image and settings.lambda_memory_mb < IMAGE_MIN_MEMORY_MB:
        why = f" ({settings.lambda_package_reason})" if settings.lambda_package_reason else ""
        raise SettingsError(
            f"{PROJECT}:lambdaMemoryMb: {settings.lambda_memory_mb} is too little for the model image{why}: "
            f"TensorFlow needs about 550 MiB; set at least {IMAGE_MIN_MEMORY_MB}"
        )
    zip_needed = check_files and "lambda" in settings.runtimes and settings.lambda_package == "zip"
    if zip_needed and not settings.lambda_zip.is_file():
        raise SettingsError(
            f"{PROJECT}:lambdaZipDir: {settings.lambda_zip} does not exist (run `make package`)"
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
    path = settings.lambda_zip.with_name(PACKAGE_DECISION)
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
    if "lambda" not in settings.runtimes or settings.lambda_package == "image":
        return settings
    decision = _package_decision(settings)
    if decision is None:  # the zip check below names what is missing
        return settings.model_copy(update={"lambda_package": "zip"})
    reason = decision.get("reason", "")
    if settings.lambda_package == "zip" and decision["package"] == "image":
        raise SettingsError(f"{PROJECT}:lambdaPackage is zip, but `make package` built none: {reason}")
    return settings.model_copy(
        update={"lambda_package": decision["package"], "lambda_package_reason": reason}
    )


def _describe(error: ValidationError) -> str:
    lines = []
    for problem in error.errors():
        key = ".".join(str(p) for p in problem["loc"])
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
