"""Writes the versioned artifact (SavedModel, model.tflite when LiteRT agrees, metadata.json) all at once
or not at all, for a model trained here and for one a team brings alike."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from model import litert
from model.golden import golden_set
from model.inputs import file_hashes
from model.reference import reference
from model.samples import Samples
from model.signature import SIGNATURE, keras_signature, tensors, v2_tensors
from serving import contract

TFLITE_FILE = "model.tflite"
FINGERPRINT_FILE = "fingerprint.pb"


@dataclass(frozen=True)
class Provenance:
    """What metadata.json says beyond the signature: where the model came from and how it scored."""

    name: str
    version: int
    inputs_sha256: str
    metrics: dict[str, float]
    extra: dict[str, Any] = field(default_factory=dict)  # labels, training data or source, the gate


def _drop_fingerprint(directory: Path) -> None:
    """`fingerprint.pb` holds a fresh random id on every save and nothing that serves the model reads it:
    without it the artifact stays a pure function of its inputs."""
    (directory / FINGERPRINT_FILE).unlink(missing_ok=True)


def _move_into_place(staged: Path, target: Path) -> None:
    """Swap the finished directory in; an older export of the same version is removed only after."""
    retired = target.with_name(f".retired-{target.name}-{os.getpid()}")
    if target.exists():
        target.rename(retired)
    staged.rename(target)
    shutil.rmtree(retired, ignore_errors=True)


def example(
    signature: tf.types.experimental.ConcreteFunction,
    inputs: list[dict],
    outputs: list[dict],
    samples: litert.Arrays,
) -> dict[str, list[dict]]:
    """One row of the samples (the evaluation file's first, or generated ones valid for each dtype) as a
    V2 request, and the answer TensorFlow gives it: what the smoke test sends and checks."""
    row = {name: array[:1] for name, array in samples.items()}
    answer = signature(**{name: tf.constant(array) for name, array in row.items()})
    return {
        "inputs": v2_tensors(row, inputs),
        "outputs": v2_tensors({k: v.numpy() for k, v in answer.items()}, outputs),
    }  # fmt: skip


def _write_reference(
    directory: Path,
    signature: tf.types.experimental.ConcreteFunction,
    inputs: list[dict],
    outputs: list[dict],
    labels: list[str],
    rows: litert.Arrays,
    source: str,
) -> None:
    """reference.json: the rows' distributions and those of the answers the exported signature gives."""
    answers = signature(**{name: tf.constant(array) for name, array in rows.items()})
    arrays = {name: tensor.numpy() for name, tensor in answers.items()}
    document = reference(inputs, outputs, labels, rows, arrays, source)
    (directory / contract.REFERENCE_FILE).write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")


def build_metadata(
    inputs: list[dict],
    outputs: list[dict],
    provenance: Provenance,
    conversion: litert.Conversion,
    hashes: dict[str, str],
    request_example: dict[str, list[dict]],
) -> dict[str, Any]:
    """What serving and people need to know; no timestamps and no commit, so the same inputs give the same
    bytes (the image's labels carry the commit)."""
    return {
        "name": provenance.name,
        "version": provenance.version,
        "signature_name": SIGNATURE,
        "inputs": inputs,
        "outputs": outputs,
        "labels": [],
        **provenance.extra,
        "metrics": provenance.metrics,
        "litert": conversion.record(),
        "inputs_sha256": provenance.inputs_sha256,
        "framework": {"tensorflow": tf.__version__, "keras": keras.__version__},
        "files": hashes,
        "example": request_example,
    }


def write_artifact(
    root: Path,
    provenance: Provenance,
    save: Callable[[Path], tf.types.experimental.ConcreteFunction],
    samples: Callable[[list[dict]], Samples] | None = None,
    assess: Callable[[tf.types.experimental.ConcreteFunction], tuple[dict[str, float], dict[str, Any]]]
    | None = None,
    training: litert.Arrays | None = None,
) -> Path:
    """`<root>/<name>/<version>/` via a hidden staging directory beside it. `save` writes the SavedModel
    and returns its signature; the written SavedModel is loaded once, as serving loads it: `assess` may
    score its signature (metrics and what to record) or refuse it, and LiteRT is checked against it on
    `samples` (generated when not given), whose first rows are the example and the golden set.
    reference.json describes the `training` rows when given, else the samples."""
    model_dir = root / provenance.name
    model_dir.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".staging-{provenance.version}-", dir=model_dir))
    try:
        function = save(staged)
        _drop_fingerprint(staged)
        loaded = tf.saved_model.load(str(staged))
        if assess is not None:
            metrics, extra = assess(loaded.signatures[SIGNATURE])
            provenance = replace(provenance, metrics=metrics, extra={**provenance.extra, **extra})
        inputs, outputs = tensors(function)
        drawn = samples(inputs) if samples else Samples(litert.generated_inputs(inputs), source="generated")
        arrays, signature = drawn.arrays, loaded.signatures[SIGNATURE]
        conversion = litert.convert(loaded, inputs, arrays)
        if conversion.content is not None:
            (staged / TFLITE_FILE).write_bytes(conversion.content)
        request_example = example(signature, inputs, outputs, arrays)
        labels = list(provenance.extra.get("labels", []))
        rows, source = (training, "training") if training else (arrays, drawn.source)
        _write_reference(staged, signature, inputs, outputs, labels, rows, source)
        golden_set(signature, inputs, outputs, drawn).write(staged / contract.GOLDEN_FILE)
        metadata = build_metadata(
            inputs, outputs, provenance, conversion, file_hashes(staged), request_example
        )
        contract.Metadata.from_json(metadata, f"the export of {provenance.name}").write(staged)
        target = model_dir / str(provenance.version)
        _move_into_place(staged, target)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return target


def keras_saver(model: keras.Model) -> Callable[[Path], tf.types.experimental.ConcreteFunction]:
    """Save a Keras model as a SavedModel whose `serving_default` carries its own input and output names."""

    def save(directory: Path) -> tf.types.experimental.ConcreteFunction:
        holder = tf.Module()
        holder.model = model
        holder.serve = keras_signature(model)
        tf.saved_model.save(holder, str(directory), signatures={SIGNATURE: holder.serve})
        return holder.serve

    return save
