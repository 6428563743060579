"""One-time AWS resources for a fork: GitHub's OIDC provider, a deploy and a preview role, ECR, state backend.

Run once from a laptop with admin credentials (`pulumi up` in infra/bootstrap); its
outputs become the repository variables the workflows read. No long-lived key is made.
"""

from __future__ import annotations

import json

import permissions
import pulumi
import pulumi_aws as aws
from bootstrap_settings import load
from github_oidc import AUDIENCE, GITHUB_OIDC


def trust(provider_arn: str, subjects: list[str]) -> str:
    """Only GitHub's tokens for these subjects (environments or pull requests of this repository)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": provider_arn},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {
                            f"{GITHUB_OIDC}:aud": AUDIENCE,
                            f"{GITHUB_OIDC}:sub": subjects,
                        }
                    },
                }
            ],
        }
    )


def github_role(
    provider_arn: pulumi.Input[str], purpose: str, subjects: list[str], policy: pulumi.Output[str]
) -> aws.iam.Role:
    """`twinserve-<purpose>`, assumable only by these GitHub OIDC subjects, with one inline policy."""
    role = aws.iam.Role(
        purpose,
        name=f"twinserve-{purpose}",
        max_session_duration=3600,
        assume_role_policy=pulumi.Output.from_input(provider_arn).apply(lambda arn: trust(arn, subjects)),
    )
    aws.iam.RolePolicy(f"{purpose}-policy", role=role.id, policy=policy)
    return role


def main() -> None:
    s = load()
    account = aws.get_caller_identity().account_id
    region = aws.get_region().region

    # GitHub Actions' identity provider: jobs trade their OIDC token for short-lived credentials. An
    # account has at most one; one that exists already is used, not created (bootstrap.sh looks).
    # Kept on destroy: other roles in the account may have come to trust it.
    provider_arn: pulumi.Input[str] = (
        s.github_oidc_provider_arn
        or aws.iam.OpenIdConnectProvider(
            "github",
            url=f"https://{GITHUB_OIDC}",
            client_id_lists=[AUDIENCE],
            opts=pulumi.ResourceOptions(retain_on_delete=True),
        ).arn
    )

    # The model images: tags can never be overwritten, every push is scanned, old images expire.
    images = aws.ecr.Repository(
        "images",
        name=s.ecr_repository_name,
        image_tag_mutability="IMMUTABLE",
        image_scanning_configuration={"scan_on_push": True},
    )
    aws.ecr.LifecyclePolicy(
        "images-lifecycle",
        repository=images.name,
        policy=json.dumps(
            {
                "rules": [
                    {
                        "rulePriority": 1,
                        "description": "untagged layers",
                        "selection": {
                            "tagStatus": "untagged",
                            "countType": "sinceImagePushed",
                            "countUnit": "days",
                            "countNumber": 1,
                        },
                        "action": {"type": "expire"},
                    },
                    {
                        "rulePriority": 2,
                        "description": f"keep the last {s.images_to_keep}",
                        "selection": {
                            "tagStatus": "tagged",
                            "tagPatternList": ["*"],
                            "countType": "imageCountMoreThan",
                            "countNumber": s.images_to_keep,
                        },
                        "action": {"type": "expire"},
                    },
                ]
            }
        ),
    )

    # Lambda pulls a function's image with the service's own identity: the repository must let it, for
    # this account's twinserve-* functions only (or the first image function fails to create: "Lambda
    # does not have permission to access the ECR image"; the deploy role may not set this policy).
    aws.ecr.RepositoryPolicy(
        "images-lambda-pull",
        repository=images.name,
        policy=json.dumps(permissions.lambda_pull_policy(account, region)),
    )

    environments = s.deploy_environments
    state = permissions.state_backend(account, region, environments) if s.state_backend else None
    scope = permissions.Scope(
        account=account,
        region=region,
        repository_arn=images.arn,
        state_bucket_arn=state.bucket.arn if state else None,
        state_key_arn=state.key.arn if state else None,
    )
    secrets = {env: state.secrets[env].arn for env in environments} if state else {}

    # The most any role a deploy creates may do; every deploy role must attach it to those roles.
    aws.iam.Policy(
        "function-boundary",
        name=permissions.FUNCTION_BOUNDARY,
        description="twinserve: the most a model function's role may do",
        policy=permissions.boundary_document(scope),
    )

    # Every subject in the format(s) this repository presents (s.subject_prefixes): the immutable
    # `repo:OWNER@ID/REPO@ID:…` of repositories created or renamed since 2026-07-15, the older
    # `repo:OWNER/REPO:…`, or both.
    # Deploys: one role per environment, assumable only by jobs in that GitHub environment (or, on a
    # plan without environments, runs on main), with rights over that environment's resources alone.
    deploys = {
        env: github_role(
            provider_arn,
            f"deploy-{env}",
            s.subjects(f"environment:{env}")
            + (s.subjects("ref:refs/heads/main") if s.deploy_from_main else []),
            permissions.deploy_policy(scope, env, secrets.get(env)),
        )
        for env in environments
    }
    # Publishing the image: only workflow runs on main; push to this one repository, nothing else.
    publish = github_role(
        provider_arn, "publish", s.subjects("ref:refs/heads/main"), permissions.publish_policy(scope)
    )
    # Previews for pull requests of this repository (never forks'): read the previewed environments'
    # stacks (not prod's: its state and secrets stay out of pull requests' reach), lock them.
    previewed = [env for env in environments if env in s.preview_environments]
    preview = github_role(
        provider_arn,
        "preview",
        s.subjects("pull_request"),
        permissions.preview_policy(scope, previewed, [secrets[env] for env in previewed if env in secrets]),
    )

    # The scheduled drift report (.github/workflows/drift.yml), on main: captured records, read only.
    drift = github_role(
        provider_arn, "drift", s.subjects("ref:refs/heads/main"), permissions.drift_policy(scope)
    )

    # Captured records a stack archives (captureArchive), in twinserve-capture-<account>-<region>-<env>:
    # made here, never by a deploy, so no deploy can delete what they hold; each environment's roles
    # write to its own alone. Not outputs: the program derives the same name, and outputs are variables.
    if s.capture_archive_days:
        for env in environments:
            permissions.capture_archive(account, region, env, s.capture_archive_days)

    for env, role in deploys.items():
        pulumi.export(f"AWS_DEPLOY_ROLE_ARN_{env.upper()}", role.arn)
    pulumi.export("AWS_PREVIEW_ROLE_ARN", preview.arn)
    pulumi.export("AWS_PUBLISH_ROLE_ARN", publish.arn)
    pulumi.export("AWS_DRIFT_ROLE_ARN", drift.arn)
    pulumi.export("AWS_REGION", region)
    pulumi.export("ECR_REPOSITORY_URL", images.repository_url)
    if state:
        # The region in the URL: a runner's or a laptop's default region may be another one.
        pulumi.export("PULUMI_BACKEND_URL", state.bucket.bucket.apply(lambda b: f"s3://{b}?region={region}"))
        for env in state.secrets:
            alias = permissions.secrets_alias(env)
            pulumi.export(f"PULUMI_SECRETS_PROVIDER_{env.upper()}", f"awskms://{alias}?region={region}")


main()
