"""Finds the model version to serve under a TF Serving-style root and reads its metadata."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from serving.contract import ContractError, Example, Metadata, TensorSpec
from serving.errors import ArtifactError

__all__ = ["ModelSpec", "TensorSpec", "locate", "read_spec"]


@dataclass(frozen=True)
class ModelSpec:
    """What the routes need to describe and validate requests, read from metadata.json."""

    name: str
    version: str
    path: Path
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    labels: tuple[str, ...]
    signature_name: str
    example: Example

    @functools.cached_property
    def inputs_by_name(self) -> dict[str, TensorSpec]:
        return {spec.name: spec for spec in self.inputs}


def _only_model(root: Path) -> Path:
    names = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(names) != 1:
        found = [p.name for p in names]
        raise ArtifactError(f"model root {root} holds {found}; set TWINSERVE_MODEL_NAME to choose one")
    return names[0]


def _latest_version(model_dir: Path) -> Path:
    versions = [p for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()]
    if not versions:
        raise ArtifactError(f"no numeric version directory under {model_dir}")
    return max(versions, key=lambda p: int(p.name))


def locate(root: Path, name: str | None = None, version: int | None = None) -> Path:
    """`<root>/<name>/<version>`: the only model unless named, the latest version unless given."""
    if not root.is_dir():
        raise ArtifactError(f"model root not found: {root} (run `make model` or set TWINSERVE_MODEL_ROOT)")
    model_dir = root / name if name else _only_model(root)
    if not model_dir.is_dir():
        raise ArtifactError(f"model {name!r} not found under {root}")
    path = model_dir / str(version) if version else _latest_version(model_dir)
    if not path.is_dir():
        raise ArtifactError(f"version {version} of {model_dir.name!r} not found under {model_dir}")
    return path


def read_spec(path: Path) -> ModelSpec:
    """metadata.json through the artifact contract; a missing file or field is a deployment error
    naming it."""
    try:
        metadata = Metadata.read(path)
    except ContractError as error:
        raise ArtifactError(str(error)) from None
    return ModelSpec(
        name=metadata.name,
        version=str(metadata.version),
        path=path,
        inputs=metadata.inputs,
        outputs=metadata.outputs,
        labels=metadata.labels,
        signature_name=metadata.signature_name,
        example=metadata.example,
    )
