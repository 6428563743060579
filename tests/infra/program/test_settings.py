"""Settings: every environment file validates; a bad value fails naming its key; the schema is current."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from program.schema import PULUMI_YAML, render
from program.settings import FIELDS, PROJECT, SettingsError, from_config

from tests.infra.conftest import ENVS, IMAGE, REPO


def test_every_environment_file_validates(env: str, config_for: Callable[..., dict[str, str]]) -> None:
    settings = from_config(config_for(env), env)
    assert settings.stack == env
    assert settings.kubernetes.namespace == f"twinserve-{env}"
    assert settings.image == IMAGE


def test_environment_files_hold_only_known_keys_that_differ_from_the_defaults(env: str) -> None:
    config = yaml.safe_load((REPO / "environments" / f"Pulumi.{env}.yaml").read_text())["config"]
    for key, value in config.items():
        namespace, name = key.split(":", 1)
        # The region is the bootstrap's, set once (REGION) and passed to every stack by the workflows.
        assert namespace == PROJECT, f"{key}: only {PROJECT}:* keys belong in a stack file"
        assert name in FIELDS, key
        default = FIELDS[name].default
        default = list(default) if isinstance(default, tuple) else default
        assert default != value, f"{key} repeats the default"


def test_environments_differ_as_documented(config_for: Callable[..., dict[str, str]]) -> None:
    dev, staging, prod = (from_config(config_for(env), env) for env in ENVS)
    assert dev.kubernetes.min_replicas == 1
    assert dev.function.provisioned_concurrency == 0
    assert staging.kubernetes.min_replicas < prod.kubernetes.min_replicas
    assert prod.kubernetes.min_replicas >= 3
    assert prod.kubernetes.service_type == "LoadBalancer"
    assert prod.function.provisioned_concurrency > staging.function.provisioned_concurrency > 0
    assert prod.function.function_url_auth == "AWS_IAM"
    assert (
        dev.traffic.requests_per_month < staging.traffic.requests_per_month < prod.traffic.requests_per_month
    )


BAD = [
    ({"runtimes": '["kubernetes", "ecs"]'}, "twinserve:runtimes.1: Input should be 'kubernetes' or 'lambda'"),
    ({"runtimes": "[]"}, "twinserve:runtimes: List should have at least 1 item"),
    ({"runtimes": '["lambda", "lambda"]'}, "twinserve:runtimes: lists a runtime twice"),
    ({"lambdaMemoryMb": "64"}, "twinserve:lambdaMemoryMb: Input should be greater than or equal to 128"),
    ({"lambdaMemoryMb": "lots"}, "twinserve:lambdaMemoryMb: Input should be a valid integer"),
    ({"lambdaArchitecture": "sparc"}, "twinserve:lambdaArchitecture: Input should be 'arm64' or 'x86_64'"),
    ({"lambdaLogRetentionDays": "10"}, "twinserve:lambdaLogRetentionDays: must be one of [1, 3, 5, 7, 14"),
    (
        {"lambdaFunctionUrlAuth": "none"},
        "twinserve:lambdaFunctionUrlAuth: Input should be 'AWS_IAM' or 'NONE'",
    ),
    ({"image": "registry/twinserve:latest"}, "twinserve:image: must be an image reference by digest"),
    ({"image": ""}, "image is not set: the deploy workflow sets it"),
    (
        {"lambdaPackage": "image", "lambdaMemoryMb": "1024", "lambdaImageArm64": ""},
        "lambdaImageArm64 is not set: a Lambda image function runs one platform's manifest",
    ),
    (
        {"lambdaImageX8664": "registry/twinserve:amd64"},
        "twinserve:lambdaImageX8664: must be an image reference by digest",
    ),
    ({"kubernetesCpuRequest": "lots"}, "twinserve:kubernetesCpuRequest: String should match pattern"),
    ({"kubernetesMinReplicas": "5", "kubernetesMaxReplicas": "2"}, "kubernetesMinReplicas must not exceed"),
    (
        {"lambdaProvisionedConcurrency": "50", "lambdaReservedConcurrency": "10"},
        "must not exceed lambdaReserved",
    ),
    ({"lambdaEndpoint": "http-api", "lambdaTimeoutSeconds": "60"}, "lambdaTimeoutSeconds must be at most 29"),
    ({"lambdaPythonVersion": "3.11"}, "twinserve:lambdaPythonVersion: Input should be '3.12' or '3.13'"),
    ({"kubernetesNamespace": "Bad_Name"}, "twinserve:kubernetesNamespace: String should match pattern"),
    (
        {"canaryImage": "registry/twinserve:new"},
        "twinserve:canaryImage: must be an image reference by digest",
    ),
    ({"canaryImage": IMAGE}, "canaryImage is the stable image: empty it (promoted) or give a new one"),
    (
        {"canaryImage": IMAGE.replace("@sha256:", "-canary@sha256:"), "runtimes": '["lambda"]'},
        "canaryImage is set, but this environment does not deploy the kubernetes runtime",
    ),
    ({"alarmErrorRatio": "5%"}, "twinserve:alarmErrorRatio: Input should be a valid number"),
    ({"alarmErrorRatio": "2"}, "twinserve:alarmErrorRatio: Input should be less than or equal to 1"),
    ({"alarmThrottleRatio": "0"}, "twinserve:alarmThrottleRatio: Input should be greater than 0"),
    ({"lambdaReservedConcurency": "5"}, "unknown setting(s) ['twinserve:lambdaReservedConcurency']"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD, ids=[next(iter(o)) for o, _ in BAD])
def test_a_bad_value_fails_naming_the_key(
    overrides: dict[str, str], message: str, config_for: Callable[..., dict[str, str]]
) -> None:
    with pytest.raises(SettingsError) as error:
        from_config(config_for("dev", **overrides), "dev")
    assert message in str(error.value)


def test_a_missing_zip_names_the_key_and_the_fix(
    config_for: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    with pytest.raises(
        SettingsError, match=r"twinserve:lambdaZipDir: .*lambda-arm64.zip does not exist \(run `make"
    ):
        from_config(config_for("dev", lambdaZipDir=str(tmp_path)), "dev")


def test_a_runtime_that_is_off_needs_none_of_its_inputs(
    config_for: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    only_lambda = from_config(config_for("dev", runtimes='["lambda"]', image=""), "dev")
    assert only_lambda.image is None
    only_kubernetes = from_config(
        config_for("dev", runtimes='["kubernetes"]', lambdaZipDir=str(tmp_path)), "dev"
    )
    assert only_kubernetes.runtimes == ["kubernetes"]


def test_values_arrive_as_the_cli_passes_them(config_for: Callable[..., dict[str, str]]) -> None:
    # Strings that look like numbers stay strings; numbers, booleans and arrays are parsed.
    settings = from_config(
        config_for(
            "dev",
            kubernetesCpuRequest="1",
            lambdaPythonVersion="3.13",
            lambdaMemoryMb="1024",
            lambdaTracing="true",
            runtimes='["lambda"]',
        ),
        "dev",
    )
    assert settings.kubernetes.cpu_request == "1"
    assert settings.function.python_version == "3.13"
    assert settings.function.memory_mb == 1024
    assert settings.function.tracing is True
    assert settings.runtimes == ["lambda"]


def test_pulumi_yaml_schema_is_generated_from_the_model() -> None:
    assert PULUMI_YAML.read_text() == render(), "run `infra/.venv/bin/python infra/program/schema.py`"


@pytest.mark.parametrize("env", ENVS)
def test_grouped_settings_read_back_as_the_same_flat_keys(
    env: str, config_for: Callable[..., dict[str, str]]
) -> None:
    """Every key lands in one field of one group and comes back out under its own name: the groups
    the components take whole hold exactly what the stack file says."""
    settings = from_config(config_for(env, kubernetesMonitoringLabels='["release=prom"]'), env)
    flat = settings.config()
    assert flat.keys() == FIELDS.keys()
    assert flat["kubernetesMonitoringLabels"] == ["release=prom"]
    as_cli = {k: "" if v is None else v if isinstance(v, str) else json.dumps(v) for k, v in flat.items()}
    again = {f"{PROJECT}:{k}": v for k, v in as_cli.items()}  # an image left empty reads as None
    assert from_config(again, env) == settings


def test_every_key_is_described_and_typed() -> None:
    config = yaml.safe_load(PULUMI_YAML.read_text())["config"]
    assert config.keys() == FIELDS.keys()
    for key, declared in config.items():
        assert declared["type"] in {"string", "integer", "boolean", "array"}, key
        assert declared["description"], key
    assert all("default" in declared and "secret" not in declared for declared in config.values())


@pytest.mark.parametrize("env_name", ENVS)
def test_every_environment_deploys_the_model_the_makefile_builds(
    env_name: str, config_for: Callable[..., dict[str, str]]
) -> None:
    """A fork that sets SOURCE in the Makefile must set modelName and modelVersion to match, or its
    functions and pods would be named for, and smoke-tested against, a model the image does not hold."""
    built = dict(
        line.split("=", 1)
        for line in subprocess.run(
            ["make", "-s", "model-ref"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.splitlines()
    )
    settings = from_config(config_for(env_name), env_name)
    deployed = {"model_name": settings.model_name, "model_version": str(settings.model_version)}
    assert deployed == built, "set modelName and modelVersion in Pulumi.yaml to what `make model-ref` prints"
