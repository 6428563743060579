"""`make model SOURCE=…`: an already-trained `.keras`, `.h5` or SavedModel becomes the same artifact that
training writes, with no training code: its signature read from the model, LiteRT kept when it agrees,
and the evaluation gate run when an evaluation file is given."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from model import gate, golden
from model.dataset import sha256_of
from model.errors import PipelineError
from model.export import FINGERPRINT_FILE, Provenance, keras_saver, write_artifact
from model.inputs import METADATA_FILE, code_parts, up_to_date
from model.litert import generated_inputs
from model.samples import Samples
from model.signature import NUMPY_TYPES, saved_model_signature, tensors
from model.source import ImportRequest, InvalidSource, checked


def _tree_sha256(path: Path) -> str:
    if path.is_file():
        return sha256_of(path)
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.name != FINGERPRINT_FILE)
    parts = [(p.relative_to(path).as_posix(), sha256_of(p)) for p in files]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def import_digest(request: ImportRequest) -> str:
    """sha256 over the model, the evaluation file, the gate, the import code and its lock."""
    parts = [*code_parts(), ("source", _tree_sha256(request.source))]
    if request.evaluation:
        parts += [("evaluation", sha256_of(request.evaluation)), ("min_accuracy", str(request.min_accuracy))]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def _load_keras(source: Path) -> keras.Model:
    try:
        return keras.models.load_model(source, compile=False)
    except Exception as error:  # Keras raises many types for unreadable or custom-object files
        raise PipelineError(f"cannot load {source.name} with Keras {keras.__version__}: {error}") from None


def _evaluation_inputs(path: Path, inputs: list[dict]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Arrays named by input, plus `labels`, each checked against the signature by name."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError) as error:
        raise PipelineError(f"EVAL {path}: not a readable .npz file ({error})") from None
    wanted = [t["name"] for t in inputs] + ["labels"]
    missing = [name for name in wanted if name not in arrays]
    if missing:
        raise PipelineError(f"EVAL {path}: missing arrays {missing}; it holds {sorted(arrays)}")
    labels = arrays["labels"]
    for tensor in inputs:
        array = arrays[tensor["name"]]
        fits = array.ndim == len(tensor["shape"]) and all(
            want in (-1, got) for want, got in zip(tensor["shape"][1:], array.shape[1:], strict=True)
        )
        if not fits or len(array) != len(labels):
            raise PipelineError(
                f"EVAL {path}: {tensor['name']!r} has shape {list(array.shape)}; the model takes "
                f"{tensor['shape']} with one row per label ({len(labels)})"
            )
        dtype = NUMPY_TYPES[tensor["datatype"]]
        arrays[tensor["name"]] = (
            array.astype(bytes).astype(object) if dtype is np.object_ else array.astype(dtype)
        )
    return {t["name"]: arrays[t["name"]] for t in inputs}, labels.astype(np.int64)


def _evaluate(
    signature: tf.types.experimental.ConcreteFunction, *, request: ImportRequest
) -> tuple[dict[str, float], dict]:
    """Accuracy and log loss of the class scores on the evaluation file, then the gate."""
    if request.evaluation is None:
        return {}, {"evaluation": {"gate": "skipped: no evaluation file given (EVAL=path.npz)"}}
    inputs, outputs = tensors(signature)
    arrays, labels = _evaluation_inputs(request.evaluation, inputs)
    answers = signature(**{k: tf.constant(v) for k, v in arrays.items()})
    scores = _class_scores(outputs, answers, labels, request.evaluation)
    metrics = gate.evaluate(scores, labels)
    if metrics["accuracy"] < request.min_accuracy:
        raise PipelineError(
            f"evaluation gate refused the model: accuracy {metrics['accuracy']:.4f} < {request.min_accuracy}"
        )
    record = {"file": request.evaluation.name, "sha256": sha256_of(request.evaluation)}
    return metrics, {"evaluation": {"gate": "passed", "min_accuracy": request.min_accuracy, "data": record}}


def _class_scores(outputs: list[dict], answers: dict, labels: np.ndarray, path: Path) -> np.ndarray:
    """The first output that scores every class (floats of shape [rows, classes]) is what the gate grades."""
    scored = gate.scored_output(outputs, {k: np.asarray(v) for k, v in answers.items()}, labels)
    if scored is not None:
        return np.asarray(answers[scored])
    shapes = {o["name"]: o["shape"] for o in outputs}
    raise PipelineError(
        f"EVAL {path}: no output scores every class for labels {labels.min()}..{labels.max()}; "
        f"outputs: {shapes}"
    )


def _saver(request: ImportRequest, kind: str) -> Callable[[Path], tf.types.experimental.ConcreteFunction]:
    if kind != "saved_model":
        return keras_saver(_load_keras(request.source))

    def copy(directory: Path) -> tf.types.experimental.ConcreteFunction:
        shutil.copytree(request.source, directory, dirs_exist_ok=True)
        loaded = tf.saved_model.load(str(directory))
        return saved_model_signature(loaded, str(request.source))

    return copy


def run_import(request: ImportRequest, root: Path) -> tuple[Path, dict[str, float], bool]:
    """The artifact, its metrics, and whether it was written now (False: the one there has these inputs)."""
    try:
        kind, name = checked(request)
    except InvalidSource as error:
        raise PipelineError(str(error)) from None
    target = root / name / str(request.version)
    digest = import_digest(request)
    if up_to_date(target, digest):
        return target, json.loads((target / METADATA_FILE).read_text())["metrics"], False
    source = {"file": request.source.name, "format": kind, "sha256": _tree_sha256(request.source)}
    provenance = Provenance(name, request.version, digest, {}, {"source": source})
    assess = partial(_evaluate, request=request)
    written = write_artifact(root, provenance, _saver(request, kind), _samples(request), assess)
    return written, json.loads((written / METADATA_FILE).read_text())["metrics"], True


def _samples(request: ImportRequest) -> Callable[[list[dict]], Samples]:
    """LiteRT is checked, and the golden set drawn, on the evaluation rows when there are some (real,
    labelled data), else on generated ones."""

    def samples(inputs: list[dict]) -> Samples:
        if request.evaluation is None:
            return Samples(generated_inputs(inputs), source="generated")
        arrays, labels = _evaluation_inputs(request.evaluation, inputs)
        rows = slice(0, golden.MAX_ROWS)
        return Samples({k: v[rows] for k, v in arrays.items()}, labels[rows], request.min_accuracy)

    return samples
