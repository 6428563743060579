"""What a user points `make model SOURCE=…` at: its format and the model's name in URLs. Importable
without TensorFlow, so a wrong path is named at once and the Makefile can ask for the name
(`python3 -m model.source SOURCE [NAME]`) before anything is installed."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


KERAS_SUFFIXES = {".keras": "keras", ".h5": "h5", ".hdf5": "h5"}


class InvalidSource(ValueError):
    """The source or the name cannot be used; the message says what to give instead."""


def source_format(source: Path) -> str:
    """keras, h5 or saved_model, from what is at the path."""
    if source.is_dir():
        if not (source / "saved_model.pb").is_file():
            raise InvalidSource(
                f"{source} is a directory without saved_model.pb; give a SavedModel directory"
            )
        return "saved_model"
    if not source.is_file():
        raise InvalidSource(f"model file not found: {source}")
    if source.suffix.lower() not in KERAS_SUFFIXES:
        raise InvalidSource(f"{source.name}: expected a .keras or .h5 file or a SavedModel directory")
    return KERAS_SUFFIXES[source.suffix.lower()]


def model_name(source: Path, name: str | None = None) -> str:
    """The name given, or the file's (a SavedModel's directory's) stem in URL-safe form."""
    chosen = name or re.sub(r"[^a-z0-9_-]+", "-", source.stem.lower()).strip("-_")
    if not NAME.fullmatch(chosen):
        raise InvalidSource(f"model name {chosen!r} must match {NAME.pattern} (set NAME=…)")
    return chosen


@dataclass(frozen=True)
class ImportRequest:
    """What the user asked for: the model file, and optionally its name, version, evaluation and gate."""

    source: Path
    name: str | None = None
    version: int = 1
    evaluation: Path | None = None
    min_accuracy: float = 0.0


def checked(request: ImportRequest) -> tuple[str, str]:
    """The source's format and the model's name, or the reason the request cannot be served."""
    kind, name = source_format(request.source), model_name(request.source, request.name)
    if request.evaluation is not None and not request.evaluation.is_file():
        raise InvalidSource(f"EVAL file not found: {request.evaluation}")
    return kind, name


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print("usage: python3 -m model.source SOURCE [NAME]", file=sys.stderr)
        return 2
    try:
        print(model_name(Path(argv[0]), argv[1] if len(argv) == 2 else None))
    except InvalidSource as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
