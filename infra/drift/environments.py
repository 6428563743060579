"""The environments a scheduled drift report reads: those that deploy the Lambda runtime with capture on.

Prints `matrix=<JSON>` for $GITHUB_OUTPUT: one entry per environment, its name and its function's log
group (the records' home), from the committed stack files as the program reads them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

from program.settings import ROOT, read_environment


def capturing(overrides: Mapping[str, dict[str, Any]] | None = None) -> list[dict[str, str]]:
    """`overrides`: settings to apply per environment, as `--config` would (the tests' forks)."""
    entries = []
    for stack_file in sorted((ROOT / "environments").glob("Pulumi.*.yaml")):
        env = stack_file.name.removeprefix("Pulumi.").removesuffix(".yaml")
        settings = read_environment(env, (overrides or {}).get(env))
        if "lambda" in settings.runtimes and settings.capture.sample_rate > 0:
            entries.append({"env": env, "log_group": f"/aws/lambda/{settings.function_name}"})
    return entries


def main() -> int:
    print(f"matrix={json.dumps({'include': capturing()})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
