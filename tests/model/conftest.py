"""Fixtures for the model pipeline: small configs in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "model" / "config.yaml"


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
