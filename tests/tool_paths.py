"""Where `make tools` put each engine the suite drives (tests/tools/build.sh --paths)."""

from __future__ import annotations

import subprocess
from pathlib import Path

BUILD = Path(__file__).resolve().parent / "tools" / "build.sh"


def tool_paths() -> dict[str, str]:
    result = subprocess.run([BUILD, "--paths"], capture_output=True, text=True, check=True)
    return dict(line.split("=", 1) for line in result.stdout.splitlines())


def tool(name: str) -> Path:
    """One engine's path; a clear failure when `make tools` has not built it."""
    path = Path(tool_paths()[name])
    assert path.is_file(), f"{path} missing: run `make tools`"
    return path
