"""The reference an export writes, and `make drift` on what a real capturing server recorded: a stream
drawn like the training data is not reported, a shifted one is, with the feature named."""

from __future__ import annotations

import csv
import json
import random
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from serving.contract import REFERENCE_FILE, REFERENCE_SCHEMA, Metadata
from tests.conftest import REPO
from tests.serving.conftest import Server, start_server, stop_server

IRIS = [
    [float(v) for v in row[:4]]
    for row in csv.reader((REPO / "model" / "data" / "iris.csv").read_text().splitlines())
    if row and row[0][0].isdigit()
]


def test_the_export_writes_the_training_rows_reference_beside_the_metadata(artifact: Path) -> None:
    reference = json.loads((artifact / REFERENCE_FILE).read_text())
    assert (reference["schema"], reference["source"], reference["rows"]) == (
        REFERENCE_SCHEMA,
        "training",
        120,
    )
    names = [f["name"] for f in reference["features"]]
    assert names == [*(f"features[{i}]" for i in range(4)), *(f"probabilities[{i}]" for i in range(3)),
                     "probabilities:top"]  # fmt: skip
    for feature in reference["features"][:7]:
        assert len(feature["shares"]) == len(feature["edges"]) + 1
        assert sum(feature["shares"]) == pytest.approx(1, abs=1e-5)
    top = reference["features"][-1]
    assert top["classes"] == list(Metadata.read(artifact).labels)
    assert REFERENCE_FILE in Metadata.read(artifact).record["files"]  # hashed with the rest


@pytest.fixture(scope="module")
def capturing(model_root: Path) -> Iterator[Server]:
    server = start_server(model_root, TWINSERVE_RUNTIME="litert", TWINSERVE_DRAIN_SECONDS="0",
                          TWINSERVE_CAPTURE_SAMPLE_RATE="1", TWINSERVE_ACCESS_LOG="false")  # fmt: skip
    yield server
    stop_server(server)


def stream(server: Server, requests: int, petal_shift: float, seed: int) -> None:
    """Requests of four iris rows each, drawn from the data, the petal length moved by `petal_shift`."""
    draw = random.Random(seed)
    with server.client() as client:
        for _ in range(requests):
            rows = [list(draw.choice(IRIS)) for _ in range(4)]
            data = [v + (petal_shift if i == 2 else 0) for row in rows for i, v in enumerate(row)]
            body = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [4, 4], "data": data}]}
            assert client.post("/v2/models/iris/infer", json=body).status_code == 200


def drift(model_root: Path, records: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-s", "drift", f"MODEL_ROOT={model_root}", f"RECORDS={records}", f"DRIFT_DIR={out}"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def written(server: Server, count: int, to: Path) -> Path:
    """The server's log once it holds `count` records (they are written behind the answers)."""
    for _ in range(200):
        lines = [line for line in server.log.read_text().splitlines() if line.startswith('{"schema"')]
        if len(lines) >= count:
            break
        time.sleep(0.05)
    to.write_text("\n".join(lines) + "\n")
    return to


def test_make_drift_names_the_shifted_feature_and_passes_a_like_stream(
    capturing: Server, model_root: Path, tmp_path: Path
) -> None:
    stream(capturing, 150, petal_shift=0.0, seed=1)
    like = drift(model_root, written(capturing, 150, tmp_path / "like.log"), tmp_path / "like")
    assert like.returncode == 0, like.stderr
    assert "No drift: every feature within PSI 0.2." in like.stdout
    assert "150 records read" in like.stdout

    stream(capturing, 150, petal_shift=2.0, seed=2)
    lines = written(capturing, 300, tmp_path / "all.log").read_text().splitlines()
    (tmp_path / "shifted.log").write_text("\n".join(lines[150:]) + "\n")
    shifted = drift(model_root, tmp_path / "shifted.log", tmp_path / "shifted")
    assert shifted.returncode != 0
    assert "features[2]" in shifted.stdout.split("\n\n")[1]  # named in the verdict
    assert "## `features[2]`" in shifted.stdout  # and charted
    assert not [n for n in ("features[0]", "features[1]", "features[3]") if f"## `{n}`" in shifted.stdout]
    assert (tmp_path / "shifted" / "dev.md").read_text() == shifted.stdout


def test_make_drift_without_a_reference_or_records_names_what_is_missing(tmp_path: Path) -> None:
    result = drift(tmp_path / "models", tmp_path / "none.log", tmp_path / "out")
    assert result.returncode != 0
    assert f"{tmp_path / 'models'}/iris/1/{REFERENCE_FILE} not found: export the model again" in result.stderr
