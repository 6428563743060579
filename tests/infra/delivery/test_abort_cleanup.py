"""The abort deletes by name the canary and shadow objects an interrupted update may have left
unrecorded: the function's `canary` alias and its URL, and its `shadow` alias (in moto's Lambda), so
the next rollout's aliases can be created."""

from __future__ import annotations

import io
import zipfile

import boto3
import pytest
from delivery.canary_cleanup import ALIASES, remove_canaries
from moto import mock_aws

REGION = "eu-west-1"


def function(client: object) -> str:
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName="twinserve-iris-prod-x", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def handler(e, c): return e\n")
    created = client.create_function(  # type: ignore[attr-defined]
        FunctionName="twinserve-iris-prod",
        Runtime="python3.12",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": code.getvalue()},
        Publish=True,
    )
    return created["FunctionArn"]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("lambda", region_name=REGION)


def test_a_left_canary_alias_and_url_are_deleted_and_a_new_canary_can_be_made(aws: object) -> None:
    arn = function(aws)
    name = "twinserve-iris-prod"
    aws.create_alias(FunctionName=name, Name="canary", FunctionVersion="1")  # type: ignore[attr-defined]
    aws.create_function_url_config(  # type: ignore[attr-defined]
        FunctionName="twinserve-iris-prod", Qualifier="canary", AuthType="AWS_IAM"
    )
    outputs = {"runtimes": ["lambda"], "functionName": "twinserve-iris-prod", "functionArn": arn}
    removed = remove_canaries(outputs, pending=[])
    assert {"the canary URL of twinserve-iris-prod", "the canary alias of twinserve-iris-prod"} <= set(
        removed
    )
    assert aws.list_aliases(FunctionName=name)["Aliases"] == []  # type: ignore[attr-defined]
    # The next canary can be made, and removed again (moto answers a missing URL without an error).
    aws.create_alias(FunctionName=name, Name="canary", FunctionVersion="1")  # type: ignore[attr-defined]
    assert "the canary alias of twinserve-iris-prod" in remove_canaries(outputs, pending=[])
    assert aws.list_aliases(FunctionName=name)["Aliases"] == []  # type: ignore[attr-defined]


def test_a_left_shadow_alias_is_deleted(aws: object) -> None:
    arn = function(aws)
    aws.create_alias(FunctionName="twinserve-iris-prod", Name="shadow", FunctionVersion="1")  # type: ignore[attr-defined]
    outputs = {"runtimes": ["lambda"], "functionName": "twinserve-iris-prod", "functionArn": arn}
    assert "the shadow alias of twinserve-iris-prod" in remove_canaries(outputs, pending=[])
    assert aws.list_aliases(FunctionName="twinserve-iris-prod")["Aliases"] == []  # type: ignore[attr-defined]


def test_the_aliases_deleted_are_the_ones_the_program_declares() -> None:
    from program.lambda_service import CANARY_ALIAS, SHADOW_ALIAS

    assert ALIASES == (CANARY_ALIAS, SHADOW_ALIAS)
