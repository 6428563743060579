"""Training settings, read once from YAML and validated so a wrong key fails with its name."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from model.errors import PipelineError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GateConfig(_Strict):
    """Thresholds on the held-out split below which the model is refused."""

    min_accuracy: float = Field(ge=0.0, le=1.0, description="Lowest accepted accuracy.")
    max_log_loss: float = Field(gt=0.0, description="Highest accepted cross-entropy.")


class TrainingConfig(_Strict):
    """Everything `make model` needs; no defaults for what decides the artifact."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="Model name in URLs.")
    version: int = Field(ge=1, description="TF Serving version directory, a positive integer.")
    data: Path = Field(description="Training CSV, relative to the config file.")
    seed: int = Field(ge=0, description="Seed for the split, the initial weights and shuffling.")
    test_fraction: float = Field(gt=0.0, lt=1.0, description="Share held out for the gate.")
    epochs: int = Field(ge=1, le=10_000, description="Full passes over the training split.")
    learning_rate: float = Field(gt=0.0, le=1.0, description="Adam step size.")
    gate: GateConfig


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(f"{key}: {item['msg']}")
    return "; ".join(lines)


def load_config(path: Path) -> TrainingConfig:
    """Parse and validate the YAML config; data paths become absolute."""
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise PipelineError(f"config file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise PipelineError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise PipelineError(f"config file {path} must hold a mapping of keys")
    try:
        config = TrainingConfig.model_validate(raw)
    except ValidationError as exc:
        raise PipelineError(f"invalid config {path}: {_describe(exc)}") from None
    return config.model_copy(update={"data": (path.parent / config.data).resolve()})
