"""Which package Lambda gets, written beside the zips for infra (`lambdaPackage: auto`) to read.

The zip carries LiteRT and `model.tflite`: a model without one (string tensors, ops LiteRT
lacks, answers that differ from TensorFlow's) or a zip over Lambda's limits gets no zip,
and the function runs the model image instead. Nothing broken is left in dist/.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from serving.contract import GOLDEN_FILE, METADATA_FILE, ContractError, Metadata, golden_beside

DECISION_FILE = "lambda-package.json"
# The artifact's metadata and golden set beside the packages: the deploy jobs' smoke test sends them.
METADATA_COPY = "model-metadata.json"
GOLDEN_COPY = golden_beside(Path(METADATA_COPY)).name


def litert_refusal(version_dir: Path) -> str | None:
    """Why the artifact has no LiteRT form, or None when it has one."""
    if (version_dir / "model.tflite").is_file():
        return None
    try:
        litert = Metadata.read(version_dir).record.get("litert", {})
    except ContractError:
        litert = {}
    return f"the model has no model.tflite ({litert.get('reason', 'not exported')})"


def remove_zips(out_dir: Path, arches: list[str]) -> None:
    """No zip of another model or an earlier build may be mistaken for this one's."""
    for arch in arches:
        for suffix in ("", ".sha256", ".inputs"):
            (out_dir / f"lambda-{arch}.zip{suffix}").unlink(missing_ok=True)


def write(out_dir: Path, version_dir: Path, package: str, reason: str = "") -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(version_dir / METADATA_FILE, out_dir / METADATA_COPY)
    shutil.copyfile(version_dir / GOLDEN_FILE, out_dir / GOLDEN_COPY)
    record = {"package": package, "model": f"{version_dir.parent.name}/{version_dir.name}"}
    if reason:
        record["reason"] = reason
    path = out_dir / DECISION_FILE
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return path
