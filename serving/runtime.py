"""Loads the artifact with LiteRT or TensorFlow and predicts on a batch; both answer alike.

Neither runtime is imported at module level, so the Lambda zip (LiteRT only) never
touches TensorFlow and the image's TensorFlow runtime never needs LiteRT.
"""

from __future__ import annotations

import importlib.util
import threading
from typing import Protocol

import numpy as np

from serving.artifact import ModelSpec
from serving.errors import ArtifactError

RUNTIMES = ("auto", "litert", "tensorflow")


class Runtime(Protocol):
    name: str

    def predict(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Outputs by name for a float32 batch of shape [rows, *features]."""
        ...


class LiteRTRuntime:
    """The `.tflite` under LiteRT, resizing the static [1, …] input to each batch's rows."""

    name = "litert"

    def __init__(self, spec: ModelSpec, threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_path=str(spec.path / "model.tflite"), num_threads=threads)
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._outputs = [d["index"] for d in self._interpreter.get_output_details()]
        self._names = [o.name for o in spec.outputs]
        self._rows = -1
        self._lock = threading.Lock()

    def predict(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        with self._lock:
            if batch.shape[0] != self._rows:
                self._interpreter.resize_tensor_input(self._input, batch.shape)
                self._interpreter.allocate_tensors()
                self._rows = batch.shape[0]
            self._interpreter.set_tensor(self._input, batch)
            self._interpreter.invoke()
            return {
                n: self._interpreter.get_tensor(i).copy()
                for n, i in zip(self._names, self._outputs, strict=True)
            }


class TensorFlowRuntime:
    """The SavedModel's serving signature, with thread pools sized to the CPUs we may use."""

    name = "tensorflow"

    def __init__(self, spec: ModelSpec, threads: int = 1) -> None:
        import tensorflow as tf

        if tf.config.threading.get_intra_op_parallelism_threads() != threads:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        self._tf = tf
        loaded = tf.saved_model.load(str(spec.path))
        if spec.signature_name not in loaded.signatures:
            raise ArtifactError(f"signature {spec.signature_name!r} not in {spec.path}")
        self._loaded = loaded
        self._signature = loaded.signatures[spec.signature_name]
        self._input = spec.inputs[0].name

    def predict(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        outputs = self._signature(**{self._input: self._tf.constant(batch)})
        return {name: tensor.numpy() for name, tensor in outputs.items()}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def resolve(choice: str, spec: ModelSpec) -> str:
    """`auto` picks LiteRT when it is installed and the artifact has a .tflite, else TensorFlow."""
    if choice == "auto":
        if _installed("ai_edge_litert") and (spec.path / "model.tflite").is_file():
            return "litert"
        return "tensorflow"
    return choice


def load_runtime(choice: str, spec: ModelSpec, threads: int) -> Runtime:
    """Load, then warm up with one row so the first client request pays no first-call cost."""
    kind = resolve(choice, spec)
    module = {"litert": "ai_edge_litert", "tensorflow": "tensorflow"}[kind]
    if not _installed(module):
        raise ArtifactError(f"runtime {kind!r} needs the {module!r} package, which is not installed")
    runtime: Runtime = LiteRTRuntime(spec, threads) if kind == "litert" else TensorFlowRuntime(spec, threads)
    width = spec.inputs[0].shape[1:]
    runtime.predict(np.zeros((1, *width), dtype=np.float32))
    return runtime
