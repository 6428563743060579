"""The CLI as a user runs it: a passing export, and a refused model that leaves nothing behind."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli


def test_export_writes_the_tf_serving_layout(artifact: Path) -> None:
    names = sorted(p.relative_to(artifact).as_posix() for p in artifact.rglob("*") if p.is_file())
    assert names == [
        "fingerprint.pb",
        "metadata.json",
        "model.tflite",
        "saved_model.pb",
        "variables/variables.data-00000-of-00001",
        "variables/variables.index",
    ]
    assert not [p for p in artifact.parent.iterdir() if p.name.startswith(".")]


def test_gate_refuses_a_model_below_thresholds_and_writes_nothing(write_config, tmp_path: Path) -> None:
    config = write_config(gate={"min_accuracy": 1.0, "max_log_loss": 0.0001})
    out = tmp_path / "out"
    result = run_cli("--config", str(config), "--output", str(out))
    assert result.returncode == 1
    assert "evaluation gate refused the model" in result.stderr
    assert "gate.min_accuracy 1.0" in result.stderr
    assert "gate.max_log_loss 0.0001" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists() or not any(out.rglob("*"))


def test_a_failed_run_keeps_the_previous_export(write_config, artifact: Path, tmp_path: Path) -> None:
    root = tmp_path / "models"
    (root / "iris").mkdir(parents=True)
    previous = root / "iris" / "1"
    previous.mkdir()
    (previous / "metadata.json").write_text(json.dumps({"previous": True}))
    result = run_cli(
        "--config", str(write_config(gate={"min_accuracy": 1.0, "max_log_loss": 1.0})), "--output", str(root)
    )
    assert result.returncode == 1
    assert json.loads((previous / "metadata.json").read_text()) == {"previous": True}
    assert sorted(p.name for p in (root / "iris").iterdir()) == ["1"]


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    result = run_cli("--config", str(tmp_path / "nope.yaml"), "--output", str(tmp_path))
    assert result.returncode == 1
    assert f"config file not found: {tmp_path / 'nope.yaml'}" in result.stderr
