"""A wrong config value fails with the key named, before any training."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.config import load_config
from model.errors import PipelineError


def test_shipped_config_is_valid() -> None:
    config = load_config(Path("model/config.yaml"))
    assert config.name == "iris"
    assert config.data.is_file()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"version": None}, "version: Field required"),
        ({"gate": {"min_accuracy": 0.9}}, "gate.max_log_loss: Field required"),
        ({"epochs": 0}, "epochs: Input should be greater than or equal to 1"),
        ({"test_fraction": 1.5}, "test_fraction: Input should be less than 1"),
        ({"name": "Bad Name!"}, "name: String should match pattern"),
        ({"learning_rat": 0.1}, "learning_rat: Extra inputs are not permitted"),
        ({"gate": {"min_accuracy": 2, "max_log_loss": 1}}, "gate.min_accuracy: Input should be less than"),
    ],
)
def test_bad_values_name_the_key(write_config, changes: dict, message: str) -> None:
    with pytest.raises(PipelineError, match="invalid config") as caught:
        load_config(write_config(**changes))
    assert message in str(caught.value)


def test_config_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(PipelineError, match="must hold a mapping"):
        load_config(path)


def test_config_that_is_not_yaml(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(PipelineError, match="is not valid YAML"):
        load_config(path)
