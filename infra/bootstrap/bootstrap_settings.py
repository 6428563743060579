"""The bootstrap project's settings: read once from its config, validated, each key named on error."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

PROJECT = "twinserve-bootstrap"
GITHUB_OIDC_ARN = r"^(arn:aws[a-z-]*:iam::\d{12}:oidc-provider/token\.actions\.githubusercontent\.com)?$"


class BootstrapError(ValueError):
    """A bootstrap setting is wrong; the message names the key."""


class BootstrapSettings(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        # No use_attribute_docstrings: nothing reads these fields' descriptions, and pydantic would
        # ast.parse this class's source to find them, which CPython 3.11 can fail with "AST constructor
        # recursion depth mismatch" (python/cpython#106905; seen in the test suite's mocked runs).
    )

    github_repository: str = Field(pattern=r"^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$")
    """The fork, as owner/name."""
    github_owner_id: int | None = Field(default=None, ge=1)
    """The owner's immutable numeric ID (`gh api repos/OWNER/REPO --jq .owner.id`)."""
    github_repository_id: int | None = Field(default=None, ge=1)
    """The repository's immutable numeric ID (`gh api repos/OWNER/REPO --jq .id`)."""
    github_subjects: Literal["ids", "names", "both"] | None = None
    """Which OIDC subject format the roles trust: `ids` (repo:OWNER@ID/REPO@ID:…, what repositories
    created or renamed since 2026-07-15 present), `names` (repo:OWNER/REPO:…, older ones), or `both`.
    Default: `ids` when the IDs are set, else `names`."""
    github_oidc_provider_arn: str = Field(default="", pattern=GITHUB_OIDC_ARN)
    """The account's existing OIDC provider for GitHub Actions; empty creates one."""
    deploy_environments: list[str] = Field(default=["dev", "staging", "prod"], min_length=1)
    """GitHub environments whose jobs may assume the deploy role."""
    preview_environments: list[str] = Field(default=["dev", "staging"])
    """Environments pull requests preview for real (reading their state and secrets); the others, prod
    above all, are previewed offline in the plan and for real only by the deploy after the merge."""
    deploy_from_main: bool = False
    """Also let workflow runs on main assume the deploy role: for a plan without environments."""
    ecr_repository_name: str = Field(default="twinserve", pattern=r"^[a-z0-9][a-z0-9._/-]*$")
    """The image repository."""
    images_to_keep: int = Field(default=50, ge=1, le=1000)
    """Tagged images the lifecycle policy keeps."""
    state_backend: bool = False
    """Create an S3 bucket and a KMS key for a self-managed Pulumi state backend."""
    capture_archive_days: int = Field(default=30, ge=0, le=3650)
    """Days the capture buckets (one per deploy environment, for stacks that set captureArchive) keep
    each record; 0 creates none."""

    @model_validator(mode="after")
    def _ids_for_id_subjects(self) -> BootstrapSettings:
        if (self.github_owner_id is None) != (self.github_repository_id is None):
            raise ValueError("githubOwnerId and githubRepositoryId are set together (both IDs, or neither)")
        if self.github_subjects in ("ids", "both") and self.github_repository_id is None:
            raise ValueError(
                f"githubSubjects={self.github_subjects} needs githubOwnerId and githubRepositoryId "
                "(`gh api repos/OWNER/REPO --jq '.owner.id, .id'`; make bootstrap sets them)"
            )
        return self

    @property
    def subject_prefixes(self) -> list[str]:
        """`repo:…` as GitHub's OIDC `sub` claim spells this repository, in each trusted format."""
        owner, name = self.github_repository.split("/")
        chosen = self.github_subjects or ("ids" if self.github_repository_id else "names")
        prefixes = []
        if chosen in ("ids", "both"):
            prefixes.append(f"repo:{owner}@{self.github_owner_id}/{name}@{self.github_repository_id}")
        if chosen in ("names", "both"):
            prefixes.append(f"repo:{owner}/{name}")
        return prefixes

    def subjects(self, *contexts: str) -> list[str]:
        """Every trusted `sub` for these contexts (`environment:prod`, `pull_request`, …)."""
        return [f"{prefix}:{context}" for context in contexts for prefix in self.subject_prefixes]


def _value(raw: str) -> object:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def load() -> BootstrapSettings:
    """The stack's `twinserve-bootstrap:*` keys; an unknown or bad one raises, named."""
    from pulumi.runtime.config import CONFIG, get_config_env

    raw = {**get_config_env(), **CONFIG.get()}
    values = {k.split(":", 1)[1]: _value(v) for k, v in raw.items() if k.startswith(f"{PROJECT}:")}
    try:
        return BootstrapSettings.model_validate(values)
    except ValidationError as error:
        problems = [
            f"{PROJECT}:{'.'.join(map(str, e['loc'])) or 'githubSubjects'}: {e['msg']}"
            for e in error.errors()
        ]
        raise BootstrapError("; ".join(problems)) from None
