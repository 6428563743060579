"""The evaluation gate: metrics on the held-out split, and a refusal below the thresholds."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from model.config import GateConfig
from model.errors import PipelineError


def evaluate(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy and mean cross-entropy of predicted class probabilities."""
    picked = probabilities[np.arange(len(labels)), labels]
    return {
        "accuracy": float(np.mean(np.argmax(probabilities, axis=1) == labels)),
        "log_loss": float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0)))),
        "test_examples": float(len(labels)),
    }


def check(metrics: dict[str, float], gate: GateConfig) -> None:
    """Raise with every failed threshold named, so nothing worse gets exported."""
    failures = []
    if metrics["accuracy"] < gate.min_accuracy:
        failures.append(f"accuracy {metrics['accuracy']:.4f} < gate.min_accuracy {gate.min_accuracy}")
    if metrics["log_loss"] > gate.max_log_loss:
        failures.append(f"log_loss {metrics['log_loss']:.4f} > gate.max_log_loss {gate.max_log_loss}")
    if failures:
        raise PipelineError("evaluation gate refused the model: " + "; ".join(failures))


def scored_output(outputs: list[dict], answers: Mapping[str, np.ndarray], labels: np.ndarray) -> str | None:
    """The first output that scores every class (floats of shape [rows, classes]): what accuracy grades."""
    for output in outputs:
        scores = np.asarray(answers[output["name"]])
        floats = output["datatype"].startswith("FP") and scores.ndim == 2
        if floats and labels.min(initial=0) >= 0 and scores.shape[1] > labels.max(initial=0):
            return output["name"]
    return None
