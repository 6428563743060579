"""Session fixtures shared across parts: the real model, exported once by the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m model` as a user runs it, from the repository root."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-m", "model", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="session")
def model_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An artifact root holding iris/1, trained and exported by the CLI."""
    root = tmp_path_factory.mktemp("models")
    result = run_cli("--output", str(root))
    assert result.returncode == 0, result.stderr
    return root


@pytest.fixture(scope="session")
def artifact(model_root: Path) -> Path:
    return model_root / "iris" / "1"
