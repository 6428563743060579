"""Fixtures for the model pipeline: one real export per session, and small configs in tmp_path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "model" / "config.yaml"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m model` as a user runs it, from the repository root."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-m", "model", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def write_config(tmp_path: Path):
    """Write a config like the shipped one with some keys changed (None removes a key)."""

    def write(**changes: object) -> Path:
        raw = yaml.safe_load(CONFIG.read_text())
        raw["data"] = str(REPO / "model" / "data" / "iris.csv")
        for key, value in changes.items():
            if value is None:
                raw.pop(key)
            else:
                raw[key] = value
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(raw))
        return path

    return write
