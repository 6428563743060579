"""Finds the model version to serve under a TF Serving-style root and reads its metadata."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from serving.errors import ArtifactError


@dataclass(frozen=True)
class TensorSpec:
    """One named tensor: V2 datatype, shape with -1 for the batch dimension."""

    name: str
    datatype: str
    shape: tuple[int, ...]


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


def _tensors(raw: list[dict]) -> tuple[TensorSpec, ...]:
    return tuple(TensorSpec(t["name"], t["datatype"], tuple(t["shape"])) for t in raw)


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
    """Parse metadata.json; a missing file or key is a deployment error naming it."""
    metadata_file = path / "metadata.json"
    try:
        metadata = json.loads(metadata_file.read_text())
        return ModelSpec(
            name=metadata["name"],
            version=str(metadata["version"]),
            path=path,
            inputs=_tensors(metadata["inputs"]),
            outputs=_tensors(metadata["outputs"]),
            labels=tuple(metadata.get("labels", ())),
            signature_name=metadata.get("signature_name", "serving_default"),
        )
    except FileNotFoundError:
        raise ArtifactError(f"metadata not found: {metadata_file}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"metadata {metadata_file} is invalid: missing or bad {exc}") from None
