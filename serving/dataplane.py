"""The protocol-neutral core both protocols call: the model, its limits and its readiness."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from serving.artifact import ModelSpec
from serving.errors import NotFound, PayloadTooLarge
from serving.runtime import Runtime

PLATFORMS = {"litert": "tflite", "tensorflow": "tensorflow_savedmodel"}


@dataclass
class DataPlane:
    """One loaded model. `ready` turns false while draining, so balancers stop sending traffic;
    requests that still arrive are served, so none is dropped during a rollout."""

    spec: ModelSpec
    runtime: Runtime
    max_batch_rows: int
    ready: bool = True

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

    def predict(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        if batch.shape[0] > self.max_batch_rows:
            raise PayloadTooLarge(
                f"batch of {batch.shape[0]} rows exceeds the limit of {self.max_batch_rows}"
            )
        return self.runtime.predict(batch)
