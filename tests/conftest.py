"""Session fixtures shared across parts: the real model, exported once by the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def model_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An artifact root holding iris/1, trained and exported by `python -m model` as a user runs it."""
    root = tmp_path_factory.mktemp("models")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-m", "model", "--output", str(root)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return root


@pytest.fixture(scope="session")
def artifact(model_root: Path) -> Path:
    return model_root / "iris" / "1"
