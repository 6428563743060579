"""The bootstrap project's settings: read once from its config, validated, each key named on error."""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field, ValidationError
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
        use_attribute_docstrings=True,
    )

    github_repository: str = Field(pattern=r"^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$")
    """The fork, as owner/name."""
    github_oidc_provider_arn: str = Field(default="", pattern=GITHUB_OIDC_ARN)
    """The account's existing OIDC provider for GitHub Actions; empty creates one."""
    deploy_environments: list[str] = Field(default=["dev", "staging", "prod"], min_length=1)
    """GitHub environments whose jobs may assume the deploy role."""
    deploy_from_main: bool = False
    """Also let workflow runs on main assume the deploy role: for a plan without environments."""
    ecr_repository_name: str = Field(default="twinserve", pattern=r"^[a-z0-9][a-z0-9._/-]*$")
    """The image repository."""
    images_to_keep: int = Field(default=50, ge=1, le=1000)
    """Tagged images the lifecycle policy keeps."""
    state_backend: bool = False
    """Create an S3 bucket and a KMS key for a self-managed Pulumi state backend."""


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
        problems = [f"{PROJECT}:{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()]
        raise BootstrapError("; ".join(problems)) from None
