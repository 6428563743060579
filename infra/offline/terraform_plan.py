"""AWS resources as captured under mocks, rewritten as a Terraform plan so checkov's AWS checks can read them.

Only the shape checkov reads: `planned_values.root_module.resources[]` with Terraform's
type names (aws:lambda/function:Function → aws_lambda_function) and snake_case
attributes, nested blocks as one-element lists. The inputs arrive already plain (the
plan writer turns integral floats into ints), so values pass through as they are.
"""

from __future__ import annotations

import re
from typing import Any

from offline.mocks import Declared

# Maps, not blocks: their keys are data (tag names, variable names), kept as written.
MAPS = {"tags", "variables"}


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def terraform_type(pulumi_type: str) -> str:
    """aws:<module>/<member>:<Kind> → aws_<module>_<kind in snake_case>."""
    module = pulumi_type.split(":")[1].split("/")[0]
    return f"aws_{snake(module)}_{snake(pulumi_type.rsplit(':', 1)[1])}"


def attributes(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        if key in MAPS:
            return value
        return [{snake(k): attributes(v, snake(k)) for k, v in value.items()}]
    if isinstance(value, list):
        return [attributes(v, key)[0] if isinstance(v, dict) else v for v in value]
    return value


def plan(resources: list[Declared]) -> dict[str, Any]:
    entries = []
    for resource in resources:
        if not resource.type.startswith("aws:"):
            continue
        kind, name = terraform_type(resource.type), re.sub(r"\W", "_", resource.name)
        values = {snake(k): attributes(v, snake(k)) for k, v in resource.inputs.items()}
        provider = "registry.terraform.io/hashicorp/aws"
        entries.append({"address": f"{kind}.{name}", "mode": "managed", "type": kind, "name": name,
                        "provider_name": provider, "values": values})  # fmt: skip
    entries.sort(key=lambda e: e["address"])  # registration order varies from run to run
    changes = [
        {**{k: e[k] for k in ("address", "mode", "type", "name", "provider_name")},
         "change": {"actions": ["create"], "before": None, "after": e["values"]}}
        for e in entries
    ]  # fmt: skip
    return {
        "format_version": "1.2",
        "terraform_version": "1.9.8",
        "planned_values": {"root_module": {"resources": entries}},
        "resource_changes": changes,
    }
