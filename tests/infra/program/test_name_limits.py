"""Every name derived from modelName fits where it is used, for the longest model name settings accept
in every environment; a model name and stack whose names would not fit are refused by key."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from offline.mocks import Run
from program.roles import ROLE_NAME_PREFIX_LIMIT, role_name_prefix
from program.settings import NAME, SettingsError, from_config

from tests.infra.conftest import ENVS

LONGEST = "m" + "o" * 40 + "l"  # 42 characters: the longest NAME accepts
# The real limits where each name is used (AWS's API references; Kubernetes' RFC 1123 labels).
LIMITS = {
    "aws:lambda/function:Function": ("name", 64),
    "aws:cloudwatch/logGroup:LogGroup": ("name", 512),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("name", 255),
    "aws:sqs/queue:Queue": ("name", 80),
    "aws:iam/role:Role": ("namePrefix", ROLE_NAME_PREFIX_LIMIT),
    "kubernetes:core/v1:Service": ("metadata.name", 63),
    "kubernetes:apps/v1:Deployment": ("metadata.name", 63),
    "kubernetes:core/v1:Namespace": ("metadata.name", 63),
    "kubernetes:core/v1:ServiceAccount": ("metadata.name", 63),
}


def test_the_longest_name_is_the_one_settings_accept() -> None:
    assert re.fullmatch(NAME, LONGEST)
    assert not re.fullmatch(NAME, LONGEST + "x")


@pytest.mark.parametrize("env", ENVS)
def test_every_derived_name_fits_for_the_longest_model_name(env: str, run_stack: Callable[..., Run]) -> None:
    run = run_stack(env, modelName=LONGEST, canaryImage="", lambdaCanaryPercent="0")
    checked = 0
    for type_, (field, limit) in LIMITS.items():
        for resource in run.of_type(type_):
            value: object = resource.inputs
            for part in field.split("."):
                value = value[part] if isinstance(value, dict) else None
            if value is None:
                continue
            assert len(str(value)) <= limit, (type_, value, len(str(value)))
            checked += 1
    assert checked >= 5


def test_a_long_function_name_gets_a_deterministic_role_prefix_within_iams_limit() -> None:
    prod = f"twinserve-{LONGEST}-prod"
    prefix = role_name_prefix(prod)
    assert len(prefix) == ROLE_NAME_PREFIX_LIMIT
    assert prefix.startswith("twinserve-mo")  # still within the deploy role's twinserve-* scope
    assert prefix == role_name_prefix(prod)
    assert prefix != role_name_prefix(f"twinserve-{LONGEST}-staging")
    assert role_name_prefix("twinserve-iris-prod") == "twinserve-iris-prod-"  # existing stacks keep theirs


def test_a_function_name_past_lambdas_limit_is_refused_naming_the_key(
    config_for: Callable[..., dict[str, str]],
) -> None:
    with pytest.raises(
        SettingsError, match=r"modelName '.*' makes the Lambda function name .* 67 characters"
    ):
        from_config(config_for("dev", modelName=LONGEST), "production-eu1")
