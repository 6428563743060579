"""Loads the artifact with LiteRT or TensorFlow and predicts on a batch; both answer alike.

Neither runtime is imported at module level, so the Lambda zip (LiteRT only) never
touches TensorFlow and the image's TensorFlow runtime never needs LiteRT.
"""

from __future__ import annotations

import importlib.util
import threading
from typing import Protocol

import numpy as np

from serving.artifact import ModelSpec, TensorSpec
from serving.errors import ArtifactError
from serving.tensors import NUMPY_TYPES, Inputs

RUNTIMES = ("auto", "litert", "tensorflow")


class Runtime(Protocol):
    name: str

    def predict(self, inputs: Inputs) -> dict[str, np.ndarray]:
        """Outputs by name for inputs by name, each of shape [rows, …] in the input's dtype."""
        ...


def _by_name(signature: dict[str, dict], specs: tuple[TensorSpec, ...], fallback: list[dict]) -> list[int]:
    """Tensor indices in the order of the model's inputs or outputs: by the .tflite's signature names,
    or by position for a model converted without them."""
    if {t.name for t in specs} <= set(signature):
        return [signature[t.name]["index"] for t in specs]
    if len(fallback) != len(specs):
        raise ArtifactError(f"model.tflite has {len(fallback)} tensors where metadata names {len(specs)}")
    return [d["index"] for d in fallback]


class LiteRTRuntime:
    """The `.tflite` under LiteRT, resizing its static [1, …] inputs to each request's shapes."""

    name = "litert"

    def __init__(self, spec: ModelSpec, threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_path=str(spec.path / "model.tflite"), num_threads=threads)
        signatures = self._interpreter.get_signature_list()
        runner = self._interpreter.get_signature_runner() if len(signatures) == 1 else None
        named_inputs = runner.get_input_details() if runner else {}
        named_outputs = runner.get_output_details() if runner else {}
        inputs = _by_name(named_inputs, spec.inputs, self._interpreter.get_input_details())
        outputs = _by_name(named_outputs, spec.outputs, self._interpreter.get_output_details())
        self._inputs = [(t.name, index) for t, index in zip(spec.inputs, inputs, strict=True)]
        self._outputs = [(t.name, index) for t, index in zip(spec.outputs, outputs, strict=True)]
        self._shapes: tuple[tuple[int, ...], ...] = ()
        self._lock = threading.Lock()

    def _resize(self, inputs: Inputs) -> None:
        shapes = tuple(inputs[name].shape for name, _ in self._inputs)
        if shapes != self._shapes:
            for (_, index), shape in zip(self._inputs, shapes, strict=True):
                self._interpreter.resize_tensor_input(index, shape)
            self._interpreter.allocate_tensors()
            self._shapes = shapes

    def predict(self, inputs: Inputs) -> dict[str, np.ndarray]:
        with self._lock:
            self._resize(inputs)
            for name, index in self._inputs:
                self._interpreter.set_tensor(index, inputs[name])
            self._interpreter.invoke()
            return {name: self._interpreter.get_tensor(index).copy() for name, index in self._outputs}


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
        self._dtypes = {t.name: tf.string if t.datatype == "BYTES" else tf.as_dtype(NUMPY_TYPES[t.datatype])
                        for t in spec.inputs}  # fmt: skip

    def predict(self, inputs: Inputs) -> dict[str, np.ndarray]:
        tensors = {name: self._tf.constant(array, dtype=self._dtypes[name]) for name, array in inputs.items()}
        return {name: tensor.numpy() for name, tensor in self._signature(**tensors).items()}


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
    runtime.predict(example_inputs(spec))
    return runtime


def example_inputs(spec: ModelSpec) -> Inputs:
    """The artifact's own example request as arrays: what the warm-up predicts on, so it runs the
    model on inputs valid for it (words for a text model) rather than on zeros."""
    inputs = {}
    for tensor in spec.example.inputs:
        if tensor.datatype == "BYTES":
            values = [v.encode() if isinstance(v, str) else v for v in tensor.data]
            array = np.array(values, dtype=np.object_)
        else:
            array = np.array(tensor.data, dtype=NUMPY_TYPES[tensor.datatype])
        inputs[tensor.name] = array.reshape(tensor.shape)
    return inputs
