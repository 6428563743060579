"""`infra/bootstrap/github_oidc.py` against IAM served by moto: the account's GitHub provider, or none."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from tests.infra.conftest import INFRA

sys.path.insert(0, str(INFRA / "bootstrap"))
from github_oidc import existing_provider


@pytest.fixture
def iam() -> Iterator[object]:
    with mock_aws():
        yield boto3.client(
            "iam", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )


def test_an_account_without_one_has_none(iam) -> None:
    iam.create_open_id_connect_provider(Url="https://example.com", ClientIDList=["sts.amazonaws.com"])
    assert existing_provider(iam) is None


def test_the_accounts_github_provider_is_found(iam, capsys: pytest.CaptureFixture[str]) -> None:
    created = iam.create_open_id_connect_provider(
        Url="https://token.actions.githubusercontent.com", ClientIDList=["sts.amazonaws.com"]
    )["OpenIDConnectProviderArn"]
    assert existing_provider(iam) == created
    assert capsys.readouterr().err == ""


def test_a_provider_without_the_sts_audience_is_used_with_a_warning(
    iam, capsys: pytest.CaptureFixture[str]
) -> None:
    created = iam.create_open_id_connect_provider(
        Url="https://token.actions.githubusercontent.com", ClientIDList=["sigstore"]
    )["OpenIDConnectProviderArn"]
    assert existing_provider(iam) == created
    assert "does not accept the audience sts.amazonaws.com (['sigstore'])" in capsys.readouterr().err
