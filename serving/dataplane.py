"""The protocol-neutral core both protocols call: the model, its limits and its readiness."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from serving.artifact import ModelSpec
from serving.errors import NotFound, PayloadTooLarge
from serving.runtime import Runtime
from serving.tensors import NUMPY_TYPES, Inputs, json_items_budget, rows_of

PLATFORMS = {"litert": "tflite", "tensorflow": "tensorflow_savedmodel"}


@dataclass
class DataPlane:
    """One loaded model. `ready` turns false while draining, so balancers stop sending traffic;
    requests that still arrive are served, so none is dropped during a rollout."""

    spec: ModelSpec
    runtime: Runtime
    max_batch_rows: int
    ready: bool = True

    @functools.cached_property
    def json_items_budget(self) -> int | None:
        """The most JSON items a request body may hold (None: no bound from the model's shape)."""
        return json_items_budget(self.spec.inputs, self.max_batch_rows)

    @property
    def platform(self) -> str:
        return PLATFORMS.get(self.runtime.name, self.runtime.name)

    def check_model(self, name: str, version: str | None) -> ModelSpec:
        """404 for a model or version this server does not serve."""
        if name != self.spec.name:
            raise NotFound(f"model {name!r} not found; this server serves {self.spec.name!r}")
        if version is not None and version != self.spec.version:
            raise NotFound(
                f"version {version!r} of model {name!r} not found; available: [{self.spec.version!r}]"
            )
        return self.spec

    def predict(self, inputs: Inputs) -> dict[str, np.ndarray]:
        """Outputs in the order and dtypes metadata.json declares, so both runtimes answer the same bytes."""
        rows = rows_of(inputs)
        if rows > self.max_batch_rows:
            raise PayloadTooLarge(f"batch of {rows} rows exceeds the limit of {self.max_batch_rows}")
        outputs = self.runtime.predict(inputs)
        return {t.name: _conform(outputs[t.name], t.datatype) for t in self.spec.outputs}


def _conform(array: np.ndarray, datatype: str) -> np.ndarray:
    wanted = np.dtype(NUMPY_TYPES[datatype])
    return array if array.dtype == wanted else array.astype(wanted)
