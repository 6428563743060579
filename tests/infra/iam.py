"""The bootstrap's role policies, and IAM's Allow evaluation of a call against one of them.

Policies are read from the bootstrap program run under mocks; evaluation covers what those
policies use: action and resource wildcards, StringEquals, StringLike, StringNotLike and Bool conditions.
"""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from tests.infra.conftest import INFRA

if TYPE_CHECKING:
    from offline.mocks import Run

BOOTSTRAP = INFRA / "bootstrap"
PROJECT = "twinserve-bootstrap"
ACCOUNT, REGION = "123456789012", "eu-west-1"  # infra/offline/mocks.py's mocked account and region
STATE_BUCKET = f"arn:aws:s3:::twinserve-pulumi-state-{ACCOUNT}-{REGION}"
STATE_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/state"
Call = tuple[str, str, dict[str, str]]  # action, resource, request context


def bootstrap(**config: str) -> Run:
    from offline.mocks import run_program

    values = {"githubRepository": "acme/models"} | config
    return run_program(BOOTSTRAP, PROJECT, "main", {f"{PROJECT}:{k}": v for k, v in values.items()})


def role(run: Run, name: str) -> tuple[dict, dict]:
    """A role's trust policy and its one inline policy."""
    (found,) = [r.inputs for r in run.of_type("aws:iam/role:Role") if r.inputs["name"] == name]
    (policy,) = [
        r.inputs for r in run.of_type("aws:iam/rolePolicy:RolePolicy") if r.name == f"{name[10:]}-policy"
    ]
    return json.loads(found["assumeRolePolicy"]), json.loads(policy["policy"])


ROLES = ("deploy-dev", "deploy-staging", "deploy-prod", "preview", "publish", "drift")


def role_policies() -> dict[str, dict[str, Any]]:
    """Each environment's deploy role's, the preview, publish and drift roles' policies, with the S3
    backend."""
    run = bootstrap(stateBackend="true")
    return {name: role(run, f"twinserve-{name}")[1] for name in ROLES}


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def conditions_hold(conditions: dict[str, dict[str, Any]], context: dict[str, str]) -> bool:
    for operator, pairs in conditions.items():
        if operator == "StringNotLike":  # a negated operator holds where the key is absent
            for key, patterns in pairs.items():
                if key in context and any(fnmatchcase(context[key], p) for p in _listed(patterns)):
                    return False
            continue
        match = {
            "StringEquals": lambda v, p: v == p,
            "StringLike": fnmatchcase,
            "Bool": lambda v, p: v.lower() == str(p).lower(),
        }[operator]
        for key, expected in pairs.items():
            if key not in context or not any(match(context[key], e) for e in _listed(expected)):
                return False
    return True


def _matches(statement: dict[str, Any], call: Call) -> bool:
    action, resource, context = call
    return (
        any(fnmatchcase(action.lower(), a.lower()) for a in _listed(statement["Action"]))
        and any(fnmatchcase(resource, r) for r in _listed(statement["Resource"]))
        and conditions_hold(statement.get("Condition", {}), context)
    )


def allows(policy: dict[str, Any], call: Call) -> bool:
    """IAM's evaluation within one policy: some Allow matches and no Deny does."""
    statements = policy["Statement"]
    return any(s["Effect"] == "Allow" and _matches(s, call) for s in statements) and not any(
        s["Effect"] == "Deny" and _matches(s, call) for s in statements
    )


def permitted(
    identity: dict[str, Any], boundary: dict[str, Any], resource: dict[str, Any], call: Call
) -> bool:
    """A role's call within one account: its policy allows it, its permissions boundary allows it, and the
    resource's policy denies it nothing (the request context carries the caller as aws:PrincipalArn)."""
    return (
        allows(identity, call)
        and allows(boundary, call)
        and not any(s["Effect"] == "Deny" and _matches(s, call) for s in resource.get("Statement", []))
    )
