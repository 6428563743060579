"""Write Pulumi.yaml's config schema from the settings model: keys, types, defaults and descriptions.

`python infra/program/schema.py` rewrites the block; a test fails when it is stale, so the schema
the CLI checks and the model the program validates never drift apart.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml
from pydantic.fields import FieldInfo

from program.settings import FIELDS, PROJECT, ROOT, config_type

PULUMI_YAML = ROOT / "Pulumi.yaml"
GENERATED = "# Generated from "  # the note's start, in every wording it has had
NOTE = f"{GENERATED}infra/program/settings.py by `python infra/program/schema.py`: the {PROJECT} keys.\n"


def declaration(field: FieldInfo, key: str) -> dict[str, Any]:
    """Every key has a default: the CLI stops any stack that does not set a key declared without one
    ("Stack 'dev' is missing configuration value …"), before the program runs. No key is marked
    `secret`: the CLI would refuse its default as unencrypted; the program checks those keys instead."""
    kind = config_type(field.annotation)
    entry: dict[str, Any] = {"type": kind, "description": field.description}
    if kind == "array":
        entry["items"] = {"type": "string"}
    if field.default is None:
        raise ValueError(f"{key} has no default: every stack would have to set it")
    # The CLI refuses a default of another type than declared; a number without a config type of its
    # own (a ratio) is declared a string, so its default is written as one.
    as_text = kind == "string" and not isinstance(field.default, str)
    entry["default"] = str(field.default) if as_text else field.default
    return entry


def schema() -> dict[str, dict[str, Any]]:
    return {key: declaration(field, key) for key, field in FIELDS.items()}


def render() -> str:
    """Pulumi.yaml with its config block replaced; everything above the block is kept as written, but
    for the note, whatever wording an earlier version of it had."""
    above = PULUMI_YAML.read_text().split("\nconfig:\n", 1)[0].splitlines()
    head = "\n".join(line for line in above if not line.startswith(GENERATED)).rstrip("\n")
    block = yaml.safe_dump({"config": schema()}, sort_keys=False, width=120, allow_unicode=True)
    return f"{head}\n{NOTE}{block}"


if __name__ == "__main__":
    PULUMI_YAML.write_text(render())
    sys.exit(0)
