"""Writes the two files pulumi-kubernetes' provider embeds, as its `generate.go` would.

The provider's module zip ships `schema.json` and `terraform-mapping.json` but not the minified,
versioned `*-embed.json` copies its `main.go` embeds; running its generate.go would compile a whole
second Pulumi codegen. This does the same two steps: set the schema's version, minify both.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def write_embeds(folder: Path, version: str) -> None:
    schema = json.loads((folder / "schema.json").read_text())
    schema["version"] = version
    (folder / "schema-embed.json").write_text(json.dumps(schema, separators=(",", ":")))
    mapping = json.loads((folder / "terraform-mapping.json").read_text())
    (folder / "terraform-mapping-embed.json").write_text(json.dumps(mapping, separators=(",", ":")))


if __name__ == "__main__":
    write_embeds(Path(sys.argv[1]), sys.argv[2])
