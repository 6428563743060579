"""The benchmarks measure the model's own example and nothing else: wrk's figures come from its
done() hook against a real server, a runtime that answers wrong gets no figures, and
`make compare` reports on the model it was given, an image model and a text model alike."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from serving.tools.bench.json_paths import bodies, check_answers
from serving.tools.bench.workload import Workload
from serving.tools.bench.wrk import lua, lua_file, run_wrk
from tests.conftest import make
from tests.serving.conftest import REPO, Server
from tests.tool_paths import tool


@pytest.fixture(scope="module")
def wrk_on_path() -> Iterator[None]:
    """wrk as `make tools` provides it (the machine's, or Debian's package in the tools cache)."""
    wrk = tool("WRK")
    previous = os.environ["PATH"]
    os.environ["PATH"] = f"{wrk.parent}{os.pathsep}{previous}"
    yield
    os.environ["PATH"] = previous


def test_wrk_reports_through_its_done_hook(
    wrk_on_path: None, litert_server: Server, model_root: Path, tmp_path: Path
) -> None:
    workload = Workload.from_root(model_root)
    script = tmp_path / "post.lua"
    script.write_text(lua(workload.body.decode()))
    figures = run_wrk(litert_server.url, 4, 1, script, workload.path)
    assert figures.requests > 0
    assert 0 < figures.p50_ms <= figures.p99_ms
    assert figures.errors == 0
    wrong = run_wrk(litert_server.url, 2, 1, script, "/v2/models/absent/infer")
    assert wrong.requests > 0
    assert wrong.errors == wrong.requests  # every answer a 404


def test_every_json_path_is_timed_on_the_same_tensors_and_binary_bodies_reach_the_server_whole(
    wrk_on_path: None, litert_server: Server, model_root: Path, tmp_path: Path
) -> None:
    """bench-image's paths at 32 rows: each answers as V2 JSON does before it is timed, and wrk sends the
    binary body from its file byte for byte (every answer a 200, none an error)."""
    workload = Workload.from_root(model_root)
    paths = bodies(workload, 32)
    check_answers(litert_server.url, workload, paths, 32)
    binary = paths["V2 binary"]
    (tmp_path / "body").write_bytes(binary.data)
    script = tmp_path / "post.lua"
    script.write_text(lua_file(tmp_path / "body", binary.headers))
    figures = run_wrk(litert_server.url, 2, 1, script, binary.path)
    assert figures.requests > 0
    assert figures.errors == 0


def test_a_runtime_that_answers_wrong_gets_no_figures(artifact: Path, tmp_path: Path) -> None:
    root = tmp_path / "models"
    copy = root / "iris" / "1"
    shutil.copytree(artifact, copy)
    metadata = json.loads((copy / "metadata.json").read_text())
    metadata["example"]["outputs"][0]["data"][0] += 0.5  # what TensorFlow "said" is now wrong
    (copy / "metadata.json").write_text(json.dumps(metadata))
    out = tmp_path / "measurements.json"
    result = subprocess.run(
        [sys.executable, "-m", "serving.tools.bench.runtimes", "--model-root", str(root), "--runs", "1",
         "--seconds", "1", "--calls", "5", "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert (
        "answered the model's example differently from TensorFlow: output 'probabilities'[0]" in result.stderr
    )
    assert not out.exists()


COMPARED = {
    "digits": ("digits.keras", "`pixels` UINT8 [-1, 8, 8, 1]", "| | Lambda (LiteRT zip) |"),
    "reviews": ("reviews", "`text` BYTES [-1]", "| | Lambda (TensorFlow image) |"),
}


@pytest.mark.parametrize("name", COMPARED)
def test_make_compare_reports_on_the_model_it_was_given(
    name: str, example_files: Path, examples_root: Path, tmp_path: Path
) -> None:
    """From a copy of the session's import of the same file and evaluation data: `make compare`'s own
    `make model` finds it up to date."""
    source, signature, lambda_column = COMPARED[name]
    out = tmp_path / "compare"
    shutil.copytree(examples_root / name, tmp_path / "models" / name)
    result = make(
        "compare", f"SOURCE={example_files / source}", f"EVAL={example_files / f'{name}-eval.npz'}",
        f"MODEL_ROOT={tmp_path / 'models'}", f"COMPARE_DIR={out}", "RUNS=1", "SECONDS_PER_RUN=1",
        "HANDLER_CALLS=20", timeout=900,
    )  # fmt: skip
    assert "is up to date" in result.stdout
    assert result.returncode == 0, result.stderr
    measured = json.loads((out / "measurements.json").read_text())
    assert measured["model"]["name"] == name
    assert measured["warm"]["kubernetes_pod"]["requests_per_second"] > 0
    report = (out / "report.md").read_text()
    assert report.startswith(f"# Kubernetes or Lambda for {name} v1\n")
    assert f"Inputs: {signature}." in report
    assert report.count(lambda_column) == 3  # dev, staging, prod
    assert "iris" not in report
    if name == "reviews":
        assert "lambda_zip_handler" not in measured["warm"]
        assert measured["sizes"]["zip_mib"] is None
        assert "no Lambda zip (the model has no model.tflite (string input 'text'" in report
        assert "twinserve:lambdaMemoryMb is 256 for dev, too little for the model image" in report


def test_the_capture_bench_times_each_rate_and_counts_what_each_server_wrote(
    wrk_on_path: None, model_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from serving.tools.bench import capture

    code = capture.main(
        ["--model-root", str(model_root), "--seconds", "1", "--rounds", "1", "--connections", "2"]
    )
    assert code == 0
    rows = {line.split(" | ")[0]: line.split(" | ") for line in capsys.readouterr().out.splitlines()
            if line.startswith("| 0") or line.startswith("| 1")}  # fmt: skip
    assert set(rows) == {"| 0", "| 0.1", "| 1"}
    assert rows["| 0"][3] == "0"  # capture off wrote nothing
    assert int(rows["| 1"][3].replace(",", "")) > int(rows["| 0.1"][3].replace(",", "")) > 0


def test_the_shadow_bench_times_each_mirroring_rate_against_none(
    wrk_on_path: None, model_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from serving.tools.bench import shadow

    code = shadow.main(
        ["--model-root", str(model_root), "--seconds", "1", "--rounds", "1", "--connections", "2"]
    )
    assert code == 0
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines() if line.startswith("| 0")
            or line.startswith("| 1")]  # fmt: skip
    assert [row[0] for row in rows] == ["| 0", "| 0.1", "| 1"]
    assert rows[0][-2:] == ["1.00", "1.00x |"]  # rate 0 against itself
    assert all(float(row[1].replace(",", "")) > 0 for row in rows)


def test_the_spread_bench_counts_each_workers_share_of_the_connections_while_wrk_runs(
    wrk_on_path: None, model_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from serving.tools.bench import spread

    code = spread.main(
        ["--model-root", str(model_root), "--seconds", "1", "--rounds", "2", "--connections", "2", "4"]
    )
    assert code == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("- ")]
    assert [line.split(":")[0] for line in lines] == ["- 2 connections", "- 4 connections"]
    for line, connections in zip(lines, (2, 4), strict=True):
        splits = [part.split(" in ") for part in line.split(": ")[1].split("; ")[0].split(", ")]
        assert sum(int(n) for _, n in splits) == 2  # one split a round
        assert all(sum(map(int, split.split("-"))) == connections for split, _ in splits)


def test_a_cold_start_weighs_the_fresh_process_not_the_bench_that_started_it() -> None:
    from serving.tools.bench import cold_start

    held = b"\x01" * (300 * 2**20)  # the bench's own peak: it builds the zip and the image in-process
    child = ("grown = b'x' * (64 * 2**20)", "{'grown': len(grown)}")
    sample = cold_start.init_once([sys.executable], child, REPO, {}, [])
    assert sample["answer"] == {"grown": 64 * 2**20}
    assert 64 < sample["rss_mib"] < 200, sample["rss_mib"]  # its 64 MiB and an interpreter, not 300 more
    del held


def test_the_zip_ab_builds_each_trees_zip_and_times_both(
    model_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from serving.tools.bench import zip_ab
    from serving.tools.bench.cold_start import host_target

    arch, version = host_target()
    args = ["--model-root", str(model_root), "--ref", "HEAD", "--arch", arch, "--python-version", version]
    assert zip_ab.main([*args, "--rounds", "1", "--runs", "2"]) == 0
    out = capsys.readouterr().out
    (row,) = [line for line in out.splitlines() if line.startswith(f"| {arch}, Python {version} |")]
    sizes = [float(cell.split(" MiB")[0]) for cell in row.split(" | ")[1:3]]
    assert all(1 < size < 50 for size in sizes), row  # each tree's zip, within Lambda's 50 MiB
    assert [line.split(":")[0] for line in out.splitlines() if line.startswith("round")] == [
        "round 1, HEAD", "round 1, this tree"
    ]  # fmt: skip
    assert f"cold start, {arch} Python {version}: " in out


def test_the_zip_ab_names_a_ref_it_cannot_check_out(
    model_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from serving.tools.bench import zip_ab

    assert zip_ab.main(["--model-root", str(model_root), "--ref", "no-such-ref"]) == 2
    assert "error: cannot check 'no-such-ref' out: " in capsys.readouterr().err


BURN_IN_A_GRANDCHILD = """
import subprocess, sys, time
burn = "import time\\nt = time.process_time()\\nwhile time.process_time() - t < 0.5: pass\\ntime.sleep(60)"
subprocess.Popen([sys.executable, "-c", burn])
time.sleep(60)
"""


def test_a_servers_cpu_counts_the_processes_under_it() -> None:
    from serving.tools.bench.cpu import cpu_seconds

    parent = subprocess.Popen([sys.executable, "-c", BURN_IN_A_GRANDCHILD], start_new_session=True)
    try:
        deadline, seen = time.monotonic() + 30, 0.0
        while time.monotonic() < deadline and seen < 0.45:
            time.sleep(0.1)
            seen = cpu_seconds(parent.pid) or 0.0
        assert seen >= 0.45  # the grandchild's half second, though the parent only sleeps
    finally:
        os.killpg(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)


def test_make_bench_weighs_the_servers_cpu_for_each_answer(
    wrk_on_path: None, model_root: Path, tmp_path: Path
) -> None:
    from serving.tools.bench.__main__ import FLOOR, measure, servers, table

    workload = Workload.from_root(model_root)
    script = tmp_path / "post.lua"
    script.write_text(lua(workload.body.decode()))
    options = argparse.Namespace(seconds=1, connections=[4])
    (result,) = measure(FLOOR, servers(workload)[FLOOR], workload, options, script)
    assert result.cpu_us_per_request is not None
    assert 0 < result.cpu_us_per_request < 10_000, result  # a constant answer: microseconds, not ms
    assert table([result]).splitlines()[-1].endswith(f"| {result.cpu_us_per_request:,.1f} |")
