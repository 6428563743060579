"""The artifact contract: what the export writes is what every reader reads, byte for byte; the
datatype table agrees with TensorFlow, numpy and TF Serving; a broken metadata.json is refused
with the field named, by the server as by the smoke test."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from serving.contract import DATATYPES, GOLDEN_FILE, ContractError, GoldenSet, Metadata
from tests.conftest import EXAMPLE_SOURCES
from tests.serving.conftest import REPO, start_server


def artifacts(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.glob("*/*/metadata.json"))


def test_every_export_reads_back_to_the_same_bytes(artifact: Path, examples_root: Path) -> None:
    exports = [artifact, *artifacts(examples_root)]
    assert {p.parent.name for p in exports} == {"iris", *EXAMPLE_SOURCES}
    for export in exports:
        written = (export / "metadata.json").read_text()
        assert Metadata.read(export).dumps() == written, export
        golden = GoldenSet.read(export / GOLDEN_FILE, Metadata.read(export))
        assert json.loads((export / GOLDEN_FILE).read_text()) == golden.to_json(), export


GOLDEN_CHANGES = {
    "schema": (lambda g: g.update(schema="twinserve.golden/0"), "schema is not 'twinserve.golden/1'"),
    "no-requests": (lambda g: g.update(requests=[]), "requests is missing or empty"),
    "labels": (lambda g: g["labels"].pop(), "labels has 29 labels for 30 rows"),
    "scored": (lambda g: g.update(scored_output="logits"), "scored_output is 'logits', not one of"),
    "accuracy": (lambda g: g.update(accuracy=1.5), "accuracy must be a number from 0 to 1 or null, got 1.5"),
    "tensor": (
        lambda g: g["requests"][1]["inputs"][0]["data"].pop(),
        "requests[1].inputs[0] (features) must",
    ),
}


@pytest.mark.parametrize("change", sorted(GOLDEN_CHANGES))
def test_a_broken_golden_set_is_refused_with_the_field_named(
    artifact: Path, tmp_path: Path, change: str
) -> None:
    edit, message = GOLDEN_CHANGES[change]
    golden = json.loads((artifact / GOLDEN_FILE).read_text())
    edit(golden)
    path = tmp_path / GOLDEN_FILE
    path.write_text(json.dumps(golden))
    with pytest.raises(ContractError, match=re.escape(message)):
        GoldenSet.read(path, Metadata.read(artifact))
    with pytest.raises(ContractError, match=r"golden set not found: .*export the model again"):
        GoldenSet.read(tmp_path / "none.json", Metadata.read(artifact))


def test_the_datatype_table_agrees_with_tensorflow_numpy_and_tf_serving() -> None:
    import tensorflow as tf
    from tensorflow.core.framework import types_pb2

    for datatype in DATATYPES:
        dtype = tf.as_dtype(datatype.tensorflow)
        assert dtype.name == datatype.tensorflow
        assert types_pb2.DataType.Name(dtype.as_datatype_enum) == datatype.tf_serving
        if datatype.v2 != "BYTES":
            assert tf.as_dtype(np.dtype(datatype.numpy)) == dtype
    assert np.dtype(next(d.numpy for d in DATATYPES if d.v2 == "BYTES")) == np.object_


def broken(metadata: dict[str, Any], change: str) -> dict[str, Any]:
    broken = json.loads(json.dumps(metadata))
    if change == "no example":
        del broken["example"]
    elif change == "unknown datatype":
        broken["inputs"][0]["datatype"] = "FLOAT"
    elif change == "example of another signature":
        broken["example"]["inputs"][0]["name"] = "other"
    elif change == "example with too few values":
        broken["example"]["inputs"][0]["data"] = broken["example"]["inputs"][0]["data"][:-1]
    elif change == "version not a number":
        broken["version"] = "latest"
    return broken


REFUSALS = {
    "no example": "example is missing: export the model again (`make model`)",
    "unknown datatype": "inputs[0] (features) has datatype 'FLOAT'",
    "example of another signature": "example.inputs does not match the signature's",
    "example with too few values": "example.inputs[0] (features) must hold [1, 4] = 4 values",
    "version not a number": "version must be a positive integer, got 'latest'",
}


@pytest.mark.parametrize("change", REFUSALS)
def test_a_broken_metadata_is_refused_with_the_field_named(artifact: Path, change: str) -> None:
    metadata = json.loads((artifact / "metadata.json").read_text())
    with pytest.raises(ContractError, match=None) as refused:
        Metadata.from_json(broken(metadata, change), "metadata.json")
    assert REFUSALS[change] in str(refused.value)


def test_the_server_and_the_smoke_test_refuse_it_the_same_way(artifact: Path, tmp_path: Path) -> None:
    root = tmp_path / "models"
    copy = root / "iris" / "1"
    shutil.copytree(artifact, copy)
    metadata = json.loads((copy / "metadata.json").read_text())
    (copy / "metadata.json").write_text(json.dumps(broken(metadata, "no example")))
    expected = f"{copy / 'metadata.json'}: {REFUSALS['no example']}"
    with pytest.raises(AssertionError) as failed:
        start_server(root, TWINSERVE_RUNTIME="tensorflow")
    assert expected in str(failed.value)
    (tmp_path / "outputs.json").write_text(json.dumps({"modelName": "iris", "runtimes": []}))
    smoke = subprocess.run(
        [str(REPO / "infra" / ".venv" / "bin" / "python"), str(REPO / "infra" / "delivery" / "smoke.py"),
         str(tmp_path / "outputs.json"), "--metadata", str(copy / "metadata.json")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert smoke.returncode != 0
    assert expected in smoke.stderr
