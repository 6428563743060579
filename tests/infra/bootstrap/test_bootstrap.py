"""The bootstrap project under mocks: OIDC trust per subject, scoped roles, hardened ECR, state backend."""

from __future__ import annotations

import json
import sys

import pytest
from offline.mocks import Run

from tests.infra.conftest import INFRA
from tests.infra.iam import allows, bootstrap, conditions_hold, role

sys.path.insert(0, str(INFRA / "policy"))
import rules


@pytest.fixture(scope="module")
def plain() -> Run:
    return bootstrap()


@pytest.fixture(scope="module")
def with_state() -> Run:
    return bootstrap(stateBackend="true")


def test_github_oidc_provider(plain: Run) -> None:
    provider = plain.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider").inputs
    assert provider["url"] == "https://token.actions.githubusercontent.com"
    assert provider["clientIdLists"] == ["sts.amazonaws.com"]


def test_an_existing_github_oidc_provider_is_trusted_and_none_is_created() -> None:
    arn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    run = bootstrap(githubOidcProviderArn=arn)
    assert run.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider") == []
    for name in ("twinserve-deploy-dev", "twinserve-deploy-prod", "twinserve-preview", "twinserve-publish",
                 "twinserve-drift"):  # fmt: skip
        trust, _ = role(run, name)
        assert trust["Statement"][0]["Principal"] == {"Federated": arn}


def test_a_malformed_provider_arn_is_named() -> None:
    with pytest.raises(Exception, match="githubOidcProviderArn"):
        bootstrap(githubOidcProviderArn="arn:aws:iam::123456789012:oidc-provider/example.com")


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_each_deploy_role_trusts_only_its_own_environment(plain: Run, env: str) -> None:
    """Whatever merges runs first in dev's job, unreviewed: dev's role must not reach prod."""
    trust, _ = role(plain, f"twinserve-deploy-{env}")
    (statement,) = trust["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"]["StringEquals"] == {
        "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
        "token.actions.githubusercontent.com:sub": [f"repo:acme/models:environment:{env}"],
    }
    assert plain.outputs[f"AWS_DEPLOY_ROLE_ARN_{env.upper()}"].endswith(f":role/twinserve-deploy-{env}")


def test_on_a_plan_without_environments_the_deploy_role_also_trusts_main() -> None:
    trust, _ = role(bootstrap(deployFromMain="true"), "twinserve-deploy-dev")
    subjects = trust["Statement"][0]["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"]
    assert subjects[-1] == "repo:acme/models:ref:refs/heads/main"
    assert "repo:acme/models:pull_request" not in subjects


SUB = "token.actions.githubusercontent.com:sub"
NEW_FORK = {"githubOwnerId": "555", "githubRepositoryId": "777"}


def trusts(run: Run, role_name: str, subject: str) -> bool:
    """IAM's StringEquals on the token's `sub` (the audience is checked beside it)."""
    trust, _ = role(run, role_name)
    (statement,) = trust["Statement"]
    return conditions_hold(
        statement["Condition"], {SUB: subject, "token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}
    )


def test_a_repository_with_immutable_subjects_can_assume_every_role_and_its_name_alone_cannot() -> None:
    run = bootstrap(**NEW_FORK)
    for role_name, context in [
        ("twinserve-deploy-prod", "environment:prod"),
        ("twinserve-publish", "ref:refs/heads/main"),
        ("twinserve-preview", "pull_request"),
    ]:
        assert trusts(run, role_name, f"repo:acme@555/models@777:{context}")
        assert not trusts(run, role_name, f"repo:acme/models:{context}")  # a recycled name
        assert not trusts(run, role_name, f"repo:acme@555/models@778:{context}")  # another repository
        assert not trusts(run, role_name, f"repo:evil@9/models@777:{context}")
    assert not trusts(run, "twinserve-deploy-prod", "repo:acme@555/models@777:pull_request")
    assert not trusts(run, "twinserve-deploy-prod", "repo:acme@555/models@777:environment:dev")


def test_an_older_repository_is_trusted_in_both_formats_when_asked() -> None:
    run = bootstrap(**NEW_FORK, githubSubjects="both")
    for subject in ("repo:acme/models:environment:dev", "repo:acme@555/models@777:environment:dev"):
        assert trusts(run, "twinserve-deploy-dev", subject)
    run = bootstrap(**NEW_FORK, githubSubjects="names")
    assert trusts(run, "twinserve-deploy-dev", "repo:acme/models:environment:dev")
    assert not trusts(run, "twinserve-deploy-dev", "repo:acme@555/models@777:environment:dev")


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"githubSubjects": "ids"}, "githubSubjects=ids needs githubOwnerId and githubRepositoryId"),
        ({"githubOwnerId": "555"}, "githubOwnerId and githubRepositoryId are set together"),
        ({**NEW_FORK, "githubSubjects": "custom"}, "githubSubjects"),
        ({"githubOwnerId": "x", "githubRepositoryId": "777"}, "githubOwnerId"),
    ],
)
def test_wrong_subject_settings_are_named(config: dict[str, str], named: str) -> None:
    with pytest.raises(Exception, match=named):
        bootstrap(**config)


def test_preview_role_trusts_only_pull_requests_and_cannot_write(plain: Run) -> None:
    trust, policy = role(plain, "twinserve-preview")
    assert trust["Statement"][0]["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"] == [
        "repo:acme/models:pull_request"
    ]
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    writes = {
        a
        for a in actions
        if a.split(":")[1].startswith(("Create", "Delete", "Update", "Put", "Tag", "Publish"))
    }
    assert writes == set()


def test_drift_role_trusts_only_main_and_may_only_read_captured_records(plain: Run) -> None:
    trust, policy = role(plain, "twinserve-drift")
    assert trust["Statement"][0]["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"] == [
        "repo:acme/models:ref:refs/heads/main"
    ]
    assert [(s["Effect"], s["Action"]) for s in policy["Statement"]] == [
        ("Allow", ["logs:FilterLogEvents"]),
        ("Allow", ["s3:ListBucket"]),
        ("Allow", ["s3:GetObject"]),
        ("Allow", ["kms:Decrypt"]),
    ]
    assert policy["Statement"][0]["Resource"] == [
        "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/twinserve-*",
        "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/twinserve-*:*",
    ]
    assert policy["Statement"][2]["Resource"] == ["arn:aws:s3:::twinserve-capture-*/*/records/*"]
    assert policy["Statement"][3]["Condition"]["StringEquals"] == {
        "kms:ViaService": "s3.eu-west-1.amazonaws.com"
    }


@pytest.mark.parametrize("name", ["twinserve-deploy-dev", "twinserve-deploy-prod", "twinserve-preview"])
def test_roles_name_every_action_and_scope_resources(with_state: Run, name: str) -> None:
    _, policy = role(with_state, name)
    props = {"policy": json.dumps(policy)}
    assert list(rules.no_wildcard_actions("aws:iam/rolePolicy:RolePolicy", props, "main")) == []
    allowed = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    unscoped = {a for s in allowed if s["Resource"] == ["*"] for a in s["Action"]}
    assert unscoped == {"ecr:GetAuthorizationToken", "logs:DescribeLogGroups"}
    assert all("twinserve" in r or r.startswith("arn:aws:apigateway") or ":repository/" in r or ":key/" in r
               for s in allowed for r in s["Resource"] if r != "*" and not s.get("Condition"))  # fmt: skip
    # What a resource ARN cannot scope, a condition does (the environment's tag, the boundary).
    assert all(
        s.get("Condition") for s in allowed for r in s["Resource"] if r.startswith("arn:aws:execute-api")
    )


def test_publish_role_trusts_main_and_may_only_push_to_the_repository(plain: Run) -> None:
    trust, policy = role(plain, "twinserve-publish")
    subjects = trust["Statement"][0]["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"]
    assert subjects == ["repo:acme/models:ref:refs/heads/main"]
    scoped = {r for s in policy["Statement"] for r in s["Resource"]}
    assert scoped == {"arn:aws:ecr:eu-west-1:123456789012:repository/twinserve", "*"}
    assert {a.split(":")[0] for s in policy["Statement"] for a in s["Action"]} == {"ecr"}


def test_deploy_role_passes_roles_to_lambda_and_the_capture_archive_s_services_only(plain: Run) -> None:
    _, policy = role(plain, "twinserve-deploy-dev")
    (passing,) = [s for s in policy["Statement"] if s["Action"] == ["iam:PassRole"]]
    services = ["lambda.amazonaws.com", "firehose.amazonaws.com", "logs.amazonaws.com"]
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": services}}
    own_role = "arn:aws:iam::123456789012:role/twinserve/dev/twinserve-iris-dev-delivery-abc"
    for service in services:
        assert allows(policy, ("iam:PassRole", own_role, {"iam:PassedToService": service}))
    for service in ("ec2.amazonaws.com", "ecs-tasks.amazonaws.com", "glue.amazonaws.com"):
        assert not allows(policy, ("iam:PassRole", own_role, {"iam:PassedToService": service}))


def test_ecr_is_immutable_scanned_and_pruned(plain: Run) -> None:
    repository = plain.one("aws:ecr/repository:Repository").inputs
    assert repository["imageTagMutability"] == "IMMUTABLE"
    assert repository["imageScanningConfiguration"] == {"scanOnPush": True}
    rules_ = json.loads(plain.one("aws:ecr/lifecyclePolicy:LifecyclePolicy").inputs["policy"])["rules"]
    assert [r["selection"]["tagStatus"] for r in rules_] == ["untagged", "tagged"]
    assert plain.outputs["ECR_REPOSITORY_URL"].endswith(".amazonaws.com/twinserve")


def named(run: Run, type_: str, name: str) -> dict:
    (found,) = [r.inputs for r in run.of_type(type_) if r.name == name]
    return found


def test_state_backend_only_when_asked_and_hardened(plain: Run, with_state: Run) -> None:
    assert not [b for b in plain.of_type("aws:s3/bucket:Bucket") if b.name == "state"]
    assert "PULUMI_BACKEND_URL" not in plain.outputs
    keys = with_state.of_type("aws:kms/key:Key")
    assert sorted(k.name for k in keys) == ["secrets-dev", "secrets-prod", "secrets-staging", "state"]
    assert all(k.inputs["enableKeyRotation"] is True for k in keys)
    block = named(with_state, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "state")
    assert all(
        block[k]
        for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    )
    assert named(with_state, "aws:s3/bucketVersioning:BucketVersioning", "state")[
        "versioningConfiguration"
    ] == {"status": "Enabled"}
    tls = json.loads(named(with_state, "aws:s3/bucketPolicy:BucketPolicy", "state")["policy"])["Statement"][0]
    assert tls["Effect"] == "Deny"
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert with_state.outputs["PULUMI_BACKEND_URL"] == (
        "s3://twinserve-pulumi-state-123456789012-eu-west-1?region=eu-west-1"
    )
    for env in ("dev", "staging", "prod"):
        provider = f"awskms://alias/twinserve-pulumi-{env}?region=eu-west-1"
        assert with_state.outputs[f"PULUMI_SECRETS_PROVIDER_{env.upper()}"] == provider


def test_outputs_are_the_repository_variables(plain: Run) -> None:
    assert set(plain.outputs) == {
        "AWS_DEPLOY_ROLE_ARN_DEV",
        "AWS_DEPLOY_ROLE_ARN_STAGING",
        "AWS_DEPLOY_ROLE_ARN_PROD",
        "AWS_PREVIEW_ROLE_ARN",
        "AWS_PUBLISH_ROLE_ARN",
        "AWS_DRIFT_ROLE_ARN",
        "AWS_REGION",
        "ECR_REPOSITORY_URL",
    }


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"githubRepository": "not a repo"},
            "twinserve-bootstrap:githubRepository: String should match pattern",
        ),
        (
            {"imagesToKeep": "0"},
            "twinserve-bootstrap:imagesToKeep: Input should be greater than or equal to 1",
        ),
        ({"stateBackendd": "true"}, "twinserve-bootstrap:stateBackendd: Extra inputs are not permitted"),
    ],
)
def test_bad_settings_are_named(config: dict[str, str], message: str) -> None:
    with pytest.raises(Exception, match=message.replace("(", r"\(")):
        bootstrap(**config)


def test_lambda_may_pull_the_image_for_twinserve_functions_only(plain: Run) -> None:
    """A Lambda image function is created only if the repository lets the Lambda service pull; the
    deploy role cannot set repository policies, so the bootstrap does."""
    (found,) = plain.of_type("aws:ecr/repositoryPolicy:RepositoryPolicy")
    policy = json.loads(found.inputs["policy"])
    (statement,) = policy["Statement"]
    assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}
    repository = "arn:aws:ecr:eu-west-1:123456789012:repository/twinserve"
    context = {"aws:sourceAccount": "123456789012"}
    function = "arn:aws:lambda:eu-west-1:123456789012:function:twinserve-iris-prod"
    as_lambda = dict(statement, Resource=repository)  # a repository policy's resource is the repository
    check = {"Version": "2012-10-17", "Statement": [as_lambda]}
    for action in ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"):
        assert allows(check, (action, repository, {**context, "aws:sourceArn": function}))
    other = "arn:aws:lambda:eu-west-1:123456789012:function:other-team-app"
    assert not allows(check, ("ecr:BatchGetImage", repository, {**context, "aws:sourceArn": other}))
    elsewhere = {"aws:sourceAccount": "999999999999", "aws:sourceArn": function.replace("1234", "9999")}
    assert not allows(check, ("ecr:BatchGetImage", repository, elsewhere))
    assert not allows(check, ("ecr:PutImage", repository, {**context, "aws:sourceArn": function}))
