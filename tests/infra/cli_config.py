"""The Pulumi CLI's checks of a stack's config against Pulumi.yaml, run before any program starts.

A transcription of pulumi/pulumi v3.274.1, which the suite cannot run here:
`Project.Validate` and `ValidateConfigValue` (sdk/go/common/workspace/project.go), and
`mergeConfig` with `validateStackConfigValue` (pkg/workspace/config.go). Messages are the CLI's own.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any


class CliConfigError(ValueError):
    """What `pulumi preview` would print before stopping."""


@dataclass(frozen=True)
class Value:
    """A config value as the CLI stores it: a string, or JSON text for lists and maps."""

    text: str
    secure: bool = False
    is_object: bool = False


def stack_values(config: dict[str, Any]) -> dict[str, Value]:
    """A stack file's `config:` block: `{secure: …}` is encrypted (here: its plaintext), lists and maps
    are objects, every other YAML scalar is kept as a string."""
    values = {}
    for key, raw in config.items():
        if isinstance(raw, dict) and set(raw) == {"secure"}:
            values[key] = Value(str(raw["secure"]), secure=True)
        elif isinstance(raw, dict | list):
            values[key] = Value(json.dumps(raw), is_object=True)
        else:
            values[key] = Value(_go_format(raw))
    return values


def _go_format(value: Any) -> str:
    """fmt.Sprintf("%v") of a YAML scalar."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def valid(type_name: str, items: dict[str, Any] | None, value: Any) -> bool:
    """ValidateConfigValue: Go's type switches, with YAML's and JSON's numbers."""
    if type_name == "string":
        return isinstance(value, str)
    if type_name == "integer":
        if isinstance(value, bool):
            return False
        if isinstance(value, int) or (isinstance(value, float) and value == math.trunc(value)):
            return True
        return isinstance(value, str) and value.lstrip("+-").isdigit()
    if type_name == "boolean":
        return value in ("true", "false") or isinstance(value, bool)
    if type_name == "object":
        return isinstance(value, dict)
    if not isinstance(value, list) or items is None:
        return False
    return all(valid(items["type"], items.get("items"), item) for item in value)


def type_name(declared: dict[str, Any]) -> str:
    """InferFullTypeName: array<string> for an array of strings."""
    items = declared.get("items")
    return f"array<{type_name(items)}>" if items else declared["type"]


def validate_project(project: dict[str, Any]) -> None:
    """Project.Validate for keys in the project's namespace."""
    for key, declared in (project.get("config") or {}).items():
        if "default" in declared and "value" in declared:
            raise CliConfigError(f"project config '{key}' cannot have both a 'default' and 'value' attribute")
        if declared.get("type") == "array" and "items" not in declared:
            raise CliConfigError(
                f"The configuration key '{key}' declares an array "
                "but does not specify the underlying type via the 'items' attribute"
            )
        typed_default = "type" in declared and "default" in declared
        if typed_default and not valid(declared["type"], declared.get("items"), declared["default"]):
            raise CliConfigError(
                f"The default value specified for configuration key '{key}' "
                f"is not of the expected type '{type_name(declared)}'"
            )


def _default_value(default: Any) -> Value:
    """createConfigValue: primitives become plaintext strings, everything else a JSON object value."""
    if isinstance(default, str | int | bool):
        return Value(_go_format(default))
    return Value(json.dumps(default), is_object=True)


def validate_stack(project: dict[str, Any], stack: str, values: dict[str, Value]) -> dict[str, Value]:
    """mergeConfig with validation: the config the program would get, or the CLI's error."""
    name, merged, missing = project["name"], dict(values), []
    declared_keys = project.get("config") or {}
    for key in sorted(declared_keys):
        declared = declared_keys[key]
        qualified = key if ":" in key else f"{name}:{key}"
        has_default = "default" in declared or "value" in declared
        if qualified not in merged and not has_default and qualified.split(":", 1)[0] == name:
            missing.append(key)
        elif qualified not in merged:
            merged[qualified] = _default_value(declared.get("default", declared.get("value")))
    if missing:
        plural = "values" if len(missing) > 1 else "value"
        raise CliConfigError(f"Stack '{stack}' is missing configuration {plural} {_format_missing(missing)}")
    for key in sorted(declared_keys):
        declared = declared_keys[key]
        if "type" in declared:
            _check_value(stack, key, declared, merged[key if ":" in key else f"{name}:{key}"])
    return merged


def _format_missing(keys: list[str]) -> str:
    if len(keys) == 1:
        return f"'{keys[0]}'"
    keys = sorted(keys)
    return (
        ", ".join(f"'{k}'" for k in keys[:-2])
        + ("" if len(keys) == 2 else ", ")
        + (f"'{keys[-2]}' and '{keys[-1]}'")
    )


def _check_value(stack: str, key: str, declared: dict[str, Any], value: Value) -> None:
    """validateStackConfigValue: secret keys must be encrypted, then the value must fit the type."""
    if declared.get("secret") and not value.secure:
        raise CliConfigError(
            f"Stack '{stack}' with configuration key '{key}' must be encrypted as it's secret"
        )
    content = json.loads(value.text) if value.is_object else value.text
    if not valid(declared["type"], declared.get("items"), content):
        raise CliConfigError(
            f"Stack '{stack}' with configuration key '{key}' must be of type '{type_name(declared)}'"
        )
