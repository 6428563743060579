"""`make bench-json`: what JSON costs beside binary tensors, against the runtime's own limit, in one run.

For each runtime the model has (LiteRT, TensorFlow), at each batch size:
- the runtime alone: 2 processes predicting the same batch in a loop, no HTTP (the limit);
- our server over the V2 binary tensor extension (a JSON header, then the raw bytes);
- over V2 JSON, and over TF Serving's row format (`instances`), the same batch.
Every path's answer is checked against the V2 JSON answer before it is timed (and that one against
TensorFlow's at export, for the model's own example). Prints the table and the ratios: each path's
throughput over the limit, JSON's throughput and p99 over binary's.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from serving.artifact import read_spec
from serving.runtime import example_inputs, load_runtime, resolve
from serving.tools.bench.__main__ import _require_free, _wait
from serving.tools.bench.workload import Workload, WrongAnswer, add_model_arguments, from_arguments
from serving.tools.bench.wrk import lua_file, run_wrk, wrk_missing

PORT = 18090
PROCESSES = 2  # as many as the server's workers on this 2-core machine
LIMIT = "the runtime alone"


@dataclass(frozen=True)
class Body:
    """One request of a path: where it goes, its bytes and headers."""

    path: str
    data: bytes
    headers: dict[str, str]


def batch(inputs: dict[str, np.ndarray], rows: int) -> dict[str, np.ndarray]:
    """The example's rows repeated to `rows`."""
    return {name: np.resize(array, (rows, *array.shape[1:])) for name, array in inputs.items()}


def _v2_json(name: str, datatypes: dict[str, str], inputs: dict[str, np.ndarray]) -> Body:
    tensors = [
        {"name": k, "shape": list(a.shape), "datatype": datatypes[k], "data": _values(a).reshape(-1).tolist()}
        for k, a in inputs.items()
    ]
    return Body(f"/v2/models/{name}/infer", json.dumps({"inputs": tensors}).encode(), {})


def _values(array: np.ndarray) -> np.ndarray:
    return np.vectorize(bytes.decode, otypes=[object])(array) if array.dtype == object else array


def _v2_binary(name: str, datatypes: dict[str, str], inputs: dict[str, np.ndarray]) -> Body:
    """Triton's binary tensor extension: the header's length in Inference-Header-Content-Length."""
    blobs, tensors = [], []
    for key, array in inputs.items():
        if array.dtype == object:
            blob = b"".join(len(item).to_bytes(4, "little") + item for item in array.reshape(-1))
        else:
            blob = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
        blobs.append(blob)
        tensors.append({"name": key, "shape": list(array.shape), "datatype": datatypes[key],
                        "parameters": {"binary_data_size": len(blob)}})  # fmt: skip
    header = json.dumps({"inputs": tensors}).encode()
    length = {"Inference-Header-Content-Length": str(len(header))}
    return Body(f"/v2/models/{name}/infer", header + b"".join(blobs), length)


def _tf_serving_rows(name: str, inputs: dict[str, np.ndarray]) -> Body:
    columns = {k: _values(a).tolist() for k, a in inputs.items()}
    if len(columns) == 1:
        instances: list[Any] = next(iter(columns.values()))
    else:
        instances = [{k: v[i] for k, v in columns.items()} for i in range(len(next(iter(columns.values()))))]
    return Body(f"/v1/models/{name}:predict", json.dumps({"instances": instances}).encode(), {})


def bodies(workload: Workload, rows: int) -> dict[str, Body]:
    spec = read_spec(workload.artifact)
    datatypes = {t.name: t.datatype for t in spec.inputs}
    inputs = batch(example_inputs(spec), rows)
    return {
        "V2 binary": _v2_binary(workload.name, datatypes, inputs),
        "V2 JSON": _v2_json(workload.name, datatypes, inputs),
        "TF Serving JSON (instances)": _tf_serving_rows(workload.name, inputs),
    }


def _post(url: str, body: Body) -> Any:
    headers = {"content-type": "application/json", **body.headers}
    request = urllib.request.Request(url + body.path, data=body.data, headers=headers)  # noqa: S310 - local
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        return json.loads(response.read())


def _first_output(answer: Any) -> np.ndarray:
    """The first output's values, from a V2 answer or a TF Serving row-format one."""
    if "outputs" in answer:
        return np.asarray(answer["outputs"][0]["data"], dtype=np.float64).reshape(-1)
    predictions = answer["predictions"]
    if predictions and isinstance(predictions[0], dict):
        predictions = [row[next(iter(row))] for row in predictions]
    return np.asarray(predictions, dtype=np.float64).reshape(-1)


def check_answers(url: str, workload: Workload, paths: dict[str, Body], rows: int) -> None:
    """Every path answers as V2 JSON does, and V2 JSON as TensorFlow did for the example's rows."""
    reference = _post(url, paths["V2 JSON"])
    if rows == workload.metadata.example.rows():
        workload.check("V2 JSON", 200, json.dumps(reference))
    want = _first_output(reference)
    for name, body in paths.items():
        got = _first_output(_post(url, body))
        if got.shape != want.shape or not np.allclose(got, want, rtol=1e-5, atol=1e-6):
            raise WrongAnswer(f"{name} answered differently from V2 JSON")


def _raw_loop(artifact: str, runtime: str, rows: int, seconds: float, counts: Any, index: int) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    spec = read_spec(Path(artifact))
    model = load_runtime(runtime, spec, threads=1)
    inputs = batch(example_inputs(spec), rows)
    model.predict(inputs)
    done, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        model.predict(inputs)
        done += 1
    counts[index] = done


def raw_rate(workload: Workload, runtime: str, rows: int, seconds: float) -> float:
    """Requests of `rows` per second the runtime alone answers, in PROCESSES processes."""
    context = multiprocessing.get_context("spawn")
    counts = context.Array("l", PROCESSES)
    workers = [
        context.Process(target=_raw_loop, args=(str(workload.artifact), runtime, rows, seconds, counts, i))
        for i in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
        if worker.exitcode != 0:
            raise SystemExit(f"error: the {runtime} runtime's loop exited with {worker.exitcode}")
    return sum(counts) / seconds


def serve(
    workload: Workload, runtime: str, sink: Any, port: int = PORT, niceness: int = 0, **settings: str
) -> subprocess.Popen[bytes]:
    """The server as a benchmark runs it: PROCESSES workers, no access log or metrics, output to `sink`;
    `settings` adds TWINSERVE_* variables of the benchmark's own, `niceness` lowers its CPU priority."""
    env = {
        **os.environ,
        "PORT": str(port),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "TWINSERVE_MODEL_ROOT": str(workload.artifact.parents[1]),
        "TWINSERVE_MODEL_NAME": workload.name,
        "TWINSERVE_RUNTIME": runtime,
        "TWINSERVE_WORKERS": str(PROCESSES),
        "TWINSERVE_METRICS_PORT": "0",
        "TWINSERVE_ACCESS_LOG": "false",
        "TWINSERVE_DRAIN_SECONDS": "0",
        **settings,
    }
    command = [sys.executable, "-m", "serving"]
    return subprocess.Popen(["nice", "-n", str(niceness), *command] if niceness else command, env=env,
                            stdout=sink, stderr=sink)  # fmt: skip


@dataclass(frozen=True)
class Row:
    runtime: str
    rows: int
    path: str
    requests_per_second: float
    p99_ms: float | None
    bytes: int


def measure(workload: Workload, runtime: str, args: argparse.Namespace, scratch: Path) -> list[Row]:
    results = []
    for rows in args.rows:
        limit = raw_rate(workload, runtime, rows, args.seconds)
        results.append(Row(runtime, rows, LIMIT, limit, None, 0))
    url = f"http://127.0.0.1:{PORT}"
    _require_free(PORT)
    with tempfile.TemporaryFile() as sink:
        process = serve(workload, runtime, sink)
        try:
            _wait(url, process, workload, f"twinserve, {runtime}", checked=True)
            for rows in args.rows:
                paths = bodies(workload, rows)
                check_answers(url, workload, paths, rows)
                for name, body in paths.items():
                    script = scratch / "post.lua"
                    (scratch / "body").write_bytes(body.data)
                    script.write_text(lua_file(scratch / "body", body.headers))
                    run_wrk(url, args.connections, 1, script, body.path)  # warm-up
                    figures = run_wrk(url, args.connections, args.seconds, script, body.path)
                    if figures.errors:
                        raise WrongAnswer(
                            f"{runtime} {name} answered {figures.errors} requests with an error"
                        )
                    results.append(
                        Row(runtime, rows, name, figures.requests_per_second, figures.p99_ms, len(body.data))
                    )
        finally:
            process.terminate()
            process.wait(timeout=60)
    return results


def table(results: list[Row]) -> str:
    lines = [
        "| runtime | rows | path | body | requests/s | of the limit | p99 ms |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in results:
        limit = next(x for x in results if (x.runtime, x.rows, x.path) == (r.runtime, r.rows, LIMIT))
        size = f"{r.bytes / 1e6:.2f} MB" if r.bytes >= 100_000 else (f"{r.bytes:,} B" if r.bytes else "-")
        p99 = f"{r.p99_ms:.1f}" if r.p99_ms is not None else "-"
        share = r.requests_per_second / limit.requests_per_second
        rate = f"{r.requests_per_second:,.1f}"
        lines.append(f"| {r.runtime} | {r.rows} | {r.path} | {size} | {rate} | {share:.2f} | {p99} |")
    return "\n".join(lines)


def ratios(results: list[Row]) -> str:
    lines = []
    for r in results:
        if r.path in (LIMIT, "V2 binary"):
            continue
        binary = next(x for x in results if (x.runtime, x.rows, x.path) == (r.runtime, r.rows, "V2 binary"))
        assert binary.p99_ms is not None
        share = r.requests_per_second / binary.requests_per_second
        lines.append(
            f"- {r.runtime}, {r.rows} row(s), {r.path}: {share:.2f} of binary's throughput, "
            f"p99 {r.p99_ms / binary.p99_ms:.2f}x binary's"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_model_arguments(parser)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--rows", type=int, nargs="+", default=[1], help="batch sizes to send")
    parser.add_argument("--runtimes", nargs="+", default=["litert", "tensorflow"])
    args = parser.parse_args(argv)
    if wrk_missing():
        return 2
    workload = from_arguments(args)
    spec = read_spec(workload.artifact)
    runtimes = [r for r in args.runtimes if r == "tensorflow" or resolve("auto", spec) == "litert"]
    results: list[Row] = []
    with tempfile.TemporaryDirectory() as scratch:
        try:
            for runtime in runtimes:
                results += measure(workload, runtime, args, Path(scratch))
        except WrongAnswer as error:
            print(f"error: {error}; a path that answers wrong gets no figures", file=sys.stderr)
            return 1
    inputs = ", ".join(f"`{t.name}` {t.datatype} {list(t.shape)}" for t in spec.inputs)
    print(f"Model {workload.name} ({inputs}); {args.connections} connections, {args.seconds} s per path.\n")
    print(table(results))
    print()
    print(ratios(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
