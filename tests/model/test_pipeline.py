"""The CLI as a user runs it: a passing export, and a refused model that leaves nothing behind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import run_cli


def test_export_writes_the_tf_serving_layout(artifact: Path) -> None:
    names = sorted(p.relative_to(artifact).as_posix() for p in artifact.rglob("*") if p.is_file())
    assert names == [  # no fingerprint.pb: a random id on every save
        "golden.json",
        "metadata.json",
        "model.tflite",
        "reference.json",
        "saved_model.pb",
        "variables/variables.data-00000-of-00001",
        "variables/variables.index",
    ]
    assert not [p for p in artifact.parent.iterdir() if p.name.startswith(".")]


def test_gate_refuses_a_model_below_thresholds_and_writes_nothing(write_config, tmp_path: Path) -> None:
    config = write_config(gate={"min_accuracy": 1.0, "max_log_loss": 0.0001}, epochs=2)
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
        "--config",
        str(write_config(gate={"min_accuracy": 1.0, "max_log_loss": 1.0}, epochs=2)),
        "--output",
        str(root),
    )
    assert result.returncode == 1
    assert json.loads((previous / "metadata.json").read_text()) == {"previous": True}
    assert sorted(p.name for p in (root / "iris").iterdir()) == ["1"]


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    result = run_cli("--config", str(tmp_path / "nope.yaml"), "--output", str(tmp_path))
    assert result.returncode == 1
    assert f"config file not found: {tmp_path / 'nope.yaml'}" in result.stderr


def test_the_same_inputs_give_the_same_bytes_and_a_rerun_trains_nothing(
    artifact: Path, tmp_path: Path
) -> None:
    """A commit that changes no input (a README edit) exports exactly the artifact main has: no new
    Lambda version, no pod rollout. The session's artifact was trained in another process."""
    again = tmp_path / "models"
    first = run_cli("--output", str(again))
    assert first.returncode == 0, first.stderr
    assert _tree(again / "iris" / "1") == _tree(artifact)
    second = run_cli("--output", str(again))
    assert second.returncode == 0, second.stderr
    assert "is up to date: its inputs (data, config, code, lock) are unchanged" in second.stdout
    assert _tree(again / "iris" / "1") == _tree(artifact)


def test_a_changed_input_or_a_damaged_export_is_rebuilt(artifact: Path, tmp_path: Path, write_config) -> None:
    root = tmp_path / "models"
    shutil.copytree(artifact.parent.parent, root)
    (root / "iris" / "1" / "model.tflite").write_bytes(b"damaged")
    repaired = run_cli("--output", str(root))
    assert repaired.returncode == 0, repaired.stderr
    assert repaired.stdout.splitlines()[0].startswith("exported")
    assert _tree(root / "iris" / "1") == _tree(artifact)
    changed = run_cli("--config", str(write_config(epochs=20)), "--output", str(root))
    assert changed.stdout.splitlines()[0].startswith("exported")
    assert (
        json.loads((root / "iris" / "1" / "metadata.json").read_text())["inputs_sha256"]
        != json.loads((artifact / "metadata.json").read_text())["inputs_sha256"]
    )


def _tree(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in directory.rglob("*") if p.is_file()}
