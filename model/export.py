"""Writes the versioned artifact (SavedModel, model.tflite, metadata.json) all at once or not at all."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from model import task
from model.config import TrainingConfig
from model.inputs import METADATA_FILE, file_hashes

TFLITE_FILE = "model.tflite"
FINGERPRINT_FILE = "fingerprint.pb"


def _signature(model: keras.Model) -> tf.types.experimental.ConcreteFunction:
    """`serving_default` with the task's input and output names instead of Keras' defaults."""
    spec = tf.TensorSpec([None, len(task.FEATURES)], tf.float32, name=task.INPUT_NAME)

    @tf.function(input_signature=[spec])
    def serve(batch: tf.Tensor) -> dict[str, tf.Tensor]:
        return {task.OUTPUT_NAME: model(batch, training=False)}

    return serve.get_concrete_function()


def _write_saved_model(model: keras.Model, directory: Path) -> None:
    """The SavedModel without `fingerprint.pb`: it holds a fresh random id on every save, and nothing
    that serves the model reads it, so the artifact stays a pure function of its inputs."""
    holder = tf.Module()
    holder.model = model
    holder.serve = _signature(model)
    tf.saved_model.save(holder, str(directory), signatures={"serving_default": holder.serve})
    (directory / FINGERPRINT_FILE).unlink(missing_ok=True)


def _write_tflite(model: keras.Model, path: Path) -> None:
    """Convert from the Keras model: a frozen graph, with no resource-variable reads for LiteRT."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    path.write_bytes(converter.convert())


def _tensor(name: str, width: int) -> dict[str, Any]:
    return {"name": name, "datatype": "FP32", "shape": [-1, width]}


def build_metadata(
    config: TrainingConfig,
    metrics: dict[str, float],
    data_sha256: str,
    hashes: dict[str, str],
    inputs_sha256: str,
) -> dict[str, Any]:
    """What serving and people need to know about the artifact; no timestamps and no commit, so the same
    inputs give the same bytes (the image's labels carry the commit)."""
    return {
        "name": config.name,
        "version": config.version,
        "signature_name": "serving_default",
        "inputs": [_tensor(task.INPUT_NAME, len(task.FEATURES))],
        "outputs": [_tensor(task.OUTPUT_NAME, len(task.LABELS))],
        "feature_names": list(task.FEATURES),
        "labels": list(task.LABELS),
        "metrics": metrics,
        "training_data": {"file": config.data.name, "sha256": data_sha256},
        "inputs_sha256": inputs_sha256,
        "framework": {"tensorflow": tf.__version__, "keras": keras.__version__},
        "files": hashes,
    }


def _move_into_place(staged: Path, target: Path) -> None:
    """Swap the finished directory in; an older export of the same version is removed only after."""
    retired = target.with_name(f".retired-{target.name}-{os.getpid()}")
    if target.exists():
        target.rename(retired)
    staged.rename(target)
    shutil.rmtree(retired, ignore_errors=True)


def export(
    model: keras.Model,
    config: TrainingConfig,
    metrics: dict[str, float],
    data_sha256: str,
    root: Path,
    inputs_sha256: str,
) -> Path:
    """Write `<root>/<name>/<version>/` via a hidden staging directory beside it."""
    model_dir = root / config.name
    model_dir.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".staging-{config.version}-", dir=model_dir))
    try:
        _write_saved_model(model, staged)
        _write_tflite(model, staged / TFLITE_FILE)
        metadata = build_metadata(config, metrics, data_sha256, file_hashes(staged), inputs_sha256)
        (staged / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
        target = model_dir / str(config.version)
        _move_into_place(staged, target)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return target
