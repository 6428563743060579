"""The serving signature: built from a Keras model's own inputs and outputs, or read from a SavedModel,
and described in the V2 datatypes metadata.json and both protocols use."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from model.errors import PipelineError
from serving import contract

SIGNATURE = contract.SIGNATURE
DATATYPES = {d.tensorflow: d.v2 for d in contract.DATATYPES}  # TensorFlow's name -> V2's
NUMPY_TYPES = {d.v2: np.dtype(d.numpy).type for d in contract.DATATYPES}  # what each datatype's arrays hold


def datatype(dtype: Any, where: str) -> str:
    name = tf.as_dtype(dtype).name
    if name not in DATATYPES:
        raise PipelineError(f"{where} has dtype {name}, which neither protocol can carry")
    return DATATYPES[name]


def describe(spec: tf.TensorSpec, name: str, where: str) -> dict[str, Any]:
    """One tensor as metadata.json records it: unknown dimensions as -1."""
    if spec.shape.rank is None or spec.shape.rank == 0:
        raise PipelineError(
            f"{where} {name!r} has no batch dimension (shape {spec.shape}); it cannot be served"
        )
    shape = [-1 if d is None else int(d) for d in spec.shape.as_list()]
    return {"name": name, "datatype": datatype(spec.dtype, f"{where} {name!r}"), "shape": shape}


def _output_names(model: keras.Model) -> list[str]:
    names = list(getattr(model, "output_names", None) or [])
    return names if len(names) == len(model.outputs) else [f"output_{i}" for i in range(len(model.outputs))]


def keras_signature(model: keras.Model) -> tf.types.experimental.ConcreteFunction:
    """`serving_default` over the model's own inputs (by their names) returning its outputs by name."""
    if not getattr(model, "inputs", None):
        raise PipelineError("the Keras model has no defined inputs; save a functional or built model")
    specs = [
        tf.TensorSpec(tuple(t.shape), tf.as_dtype(t.dtype), name=t.name.split(":")[0]) for t in model.inputs
    ]
    names = _output_names(model)

    @tf.function(input_signature=specs)
    def serve(*tensors: tf.Tensor) -> dict[str, tf.Tensor]:
        outputs = model(list(tensors) if len(tensors) > 1 else tensors[0], training=False)
        if isinstance(outputs, dict):
            return dict(outputs)
        return dict(zip(names, outputs if isinstance(outputs, list | tuple) else [outputs], strict=True))

    return serve.get_concrete_function()


def tensors(function: tf.types.experimental.ConcreteFunction) -> tuple[list[dict], list[dict]]:
    """Inputs and outputs of a signature as metadata.json records them."""
    args, kwargs = function.structured_input_signature
    named = {**{spec.name: spec for spec in args}, **kwargs}
    inputs = [describe(spec, name, "input") for name, spec in named.items()]
    outputs = function.structured_outputs
    if not isinstance(outputs, dict):
        raise PipelineError("the serving signature must return its outputs by name")
    return inputs, [describe(spec, name, "output") for name, spec in outputs.items()]


def saved_model_signature(loaded: Any, where: str) -> tf.types.experimental.ConcreteFunction:
    available = sorted(loaded.signatures)
    if SIGNATURE not in available:
        raise PipelineError(f"{where} has no {SIGNATURE!r} signature; it has {available}")
    return loaded.signatures[SIGNATURE]


def v2_tensors(arrays: dict[str, Any], specs: list[dict]) -> list[dict]:
    """Arrays as Open Inference Protocol V2 tensors (flat data, row-major), strings as text."""
    described = []
    for spec in specs:
        array = np.asarray(arrays[spec["name"]])
        data = [v.decode() if isinstance(v, bytes) else v for v in array.reshape(-1).tolist()]
        shape = list(array.shape)
        described.append({"name": spec["name"], "datatype": spec["datatype"], "shape": shape, "data": data})
    return described
