"""What every role the program creates shares: its name, its path, its boundary, its statements."""

from __future__ import annotations

import hashlib
import json

# IAM adds a 26-character unique suffix to a name prefix, whose limit is therefore 38
# (terraform-provider-aws, internal/service/iam/role.go).
ROLE_NAME_PREFIX_LIMIT = 38


def role_name_prefix(function_name: str) -> str:
    """`<function>-`, or where that passes IAM's limit its first characters and a digest of the whole,
    so every model name settings accept gets a role (and a stack made before keeps its own)."""
    prefix = f"{function_name}-"
    if len(prefix) <= ROLE_NAME_PREFIX_LIMIT:
        return prefix
    digest = hashlib.sha256(function_name.encode()).hexdigest()[:8]
    return f"{function_name[: ROLE_NAME_PREFIX_LIMIT - len(digest) - 2]}-{digest}-"


# The permissions boundary the bootstrap creates and every environment's deploy role must attach to the
# roles it creates (infra/bootstrap/permissions.py, FUNCTION_BOUNDARY): no such role can ever hold more
# than a function's logs, traces and queue and the capture archive's hops, whatever policy it is given.
FUNCTION_BOUNDARY = "twinserve-function-boundary"


def role_path(environment: str) -> str:
    """Each environment's deploy role may create, change and pass roles under its own path only."""
    return f"/twinserve/{environment}/"


def statement(actions: list[str], resources: list[str]) -> dict:
    return {"Effect": "Allow", "Action": actions, "Resource": resources}


def service_trust(service: str, condition: dict | None = None) -> str:
    """A role only this AWS service may assume (with `condition`, only on its terms)."""
    trusted = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    return json.dumps(
        {"Version": "2012-10-17", "Statement": [trusted | ({"Condition": condition} if condition else {})]}
    )
