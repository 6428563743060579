"""A model's name in URLs, from the name given or the file's; importable without TensorFlow, so the
Makefile can ask (`python3 -m model.naming SOURCE [NAME]`) before anything is installed."""

from __future__ import annotations

import re
import sys
from pathlib import Path

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class InvalidName(ValueError):
    """The name cannot be used in URLs; the message says how to choose one."""


def model_name(source: Path, name: str | None = None) -> str:
    """The name given, or the file's (a SavedModel's directory's) stem in URL-safe form."""
    chosen = name or re.sub(r"[^a-z0-9_-]+", "-", source.stem.lower()).strip("-_")
    if not NAME.fullmatch(chosen):
        raise InvalidName(f"model name {chosen!r} must match {NAME.pattern} (set NAME=…)")
    return chosen


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print("usage: python3 -m model.naming SOURCE [NAME]", file=sys.stderr)
        return 2
    try:
        print(model_name(Path(argv[0]), argv[1] if len(argv) == 2 else None))
    except InvalidName as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
