"""Cold start and size: what a Lambda init or a new pod costs on each runtime, measured in fresh processes.

Init = import + model load + first prediction, timed inside the process (what Lambda
reports as Init Duration plus the first invocation), with the process's peak RSS.
Run as `python -m serving.tools.bench.cold_start`; `make bench` and `make compare` call it.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from serving.tools.bench.workload import Workload, WrongAnswer, add_model_arguments, from_arguments
from serving.tools.packaging.decision import litert_refusal
from serving.tools.packaging.image import REPO, Image, bake_model, build
from serving.tools.packaging.lambda_zip import Package
from serving.tools.packaging.lambda_zip import build as build_zip

# Timed in the child so interpreter start-up noise of the parent never counts. Peak RSS is the child's
# own address space's high-water mark (VmHWM): `ru_maxrss` after a fork and exec also counts the
# parent's peak, so a bench that had built the zip in-process reported its own size as the handler's.
PROBE = """
import json, resource, sys, time
start = time.perf_counter()
{load}
result = {predict}
elapsed = time.perf_counter() - start
try:
    with open("/proc/self/status") as status:
        rss_mib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
except OSError:  # no /proc (macOS): ru_maxrss, in bytes there
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
answer = result if isinstance(result, dict) else None
print(json.dumps({{"seconds": elapsed, "rss_mib": rss_mib, "answer": answer}}))
"""
HANDLER = "from serving.lambda_handler import handler", "handler(json.load(open(sys.argv[1])), None)"
ZIP_HANDLER = "sys.path.insert(0, sys.argv[2]); " + HANDLER[0], HANDLER[1]
# No server, no codec: TensorFlow loads the SavedModel and its signature answers the example, as
# arrays the way the server's warm-up builds them.
BASELINE = (
    "import tensorflow as tf; from pathlib import Path; from serving.artifact import read_spec; "
    "from serving.runtime import example_inputs; "
    "inputs = example_inputs(read_spec(Path(sys.argv[2]))); model = tf.saved_model.load(sys.argv[2])",
    "[model.signatures['serving_default'](**{k: tf.constant(v) for k, v in inputs.items()})]",
)
BASELINE_NAME = "baseline (TensorFlow load + predict)"
ZIP_NAME, IMAGE_NAME = "Lambda zip (LiteRT)", "Lambda image (TensorFlow)"


@dataclass(frozen=True)
class ColdStart:
    name: str
    median_seconds: float
    max_seconds: float
    median_rss_mib: float
    max_rss_mib: float


@dataclass(frozen=True)
class Sizes:
    zip_mib: float | None  # None: the model has no zip
    zip_unzipped_mib: float | None
    image_installed_mib: float


def init_once(
    command: list[str], code: tuple[str, str], cwd: Path, env: dict[str, str], args: list[str]
) -> dict[str, Any]:
    probe = PROBE.format(load=code[0], predict=code[1])
    result = subprocess.run(
        [*command, "-c", probe, *args],
        cwd=cwd, env={**env, "TF_CPP_MIN_LOG_LEVEL": "3"}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"cold start probe failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def repeat(
    name: str,
    runs: int,
    command: list[str],
    code: tuple[str, str],
    cwd: Path,
    env: dict[str, str],
    args: list[str],
    check: Callable[[str, Any], None] | None = None,
) -> ColdStart:
    """`runs` fresh processes; a handler's answer to the example is checked each time."""
    samples = [init_once(command, code, cwd, dict(env), args) for _ in range(runs)]
    if check is not None:
        for sample in samples:
            check(name, sample["answer"])
    seconds, rss = [s["seconds"] for s in samples], [s["rss_mib"] for s in samples]
    return ColdStart(name, statistics.median(seconds), max(seconds), statistics.median(rss), max(rss))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_start_seconds(image: Image) -> float:
    """A new pod's delay: `python -m serving` from the image's venv until /v2/health/ready answers 200."""
    port = str(free_port())
    env = {
        "PATH": image.path,
        "PORT": port,
        "TWINSERVE_WORKERS": "1",
        "TWINSERVE_METRICS_PORT": "0",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    start = time.perf_counter()
    process = subprocess.Popen(
        image.cmd, cwd=image.app, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1):
                    return time.perf_counter() - start
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"server exited with {process.returncode} before it was ready")
    finally:
        process.terminate()
        process.wait(timeout=60)


@dataclass(frozen=True)
class Prepared:
    """The deployables, recreated here: the zip unpacked as /var/task (when the model has one), the
    image's venv and /app, and the model's example as a Function URL event."""

    workload: Workload
    package: Package | None
    package_reason: str
    task_root: Path | None
    image: Image
    event: Path

    @property
    def package_kind(self) -> str:
        return "zip" if self.package else "image"


def host_target() -> tuple[str, str]:
    """This machine's architecture as Lambda names it, and this interpreter's Python version."""
    arch = "x86_64" if os.uname().machine == "x86_64" else "arm64"
    return arch, f"{sys.version_info.major}.{sys.version_info.minor}"


def unpack(zip_path: Path, task_root: Path) -> Path:
    """The zip laid out as Lambda lays it out in /var/task."""
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(task_root)
    return task_root


def write_event(workload: Workload, scratch: Path) -> Path:
    """The model's example as a Function URL event, in a file the probes read."""
    event = scratch / "event.json"
    event.write_text(json.dumps(workload.lambda_event()))
    return event


def time_zip(task_root: Path, event: Path, runs: int, check: Callable[[str, Any], None]) -> ColdStart:
    """The zip's init in `runs` isolated interpreters seeing only the task root and the standard library."""
    clean = [sys.executable, "-I", "-S"]
    return repeat(
        ZIP_NAME, runs, clean, ZIP_HANDLER, task_root.parent, {}, [str(event), str(task_root)], check
    )


def prepare(workload: Workload, scratch: Path) -> Prepared:
    """Build the zip for this interpreter (when the model has a LiteRT form) and the image's venv with
    the model baked in, as `make package` and the Dockerfile do."""
    artifact = workload.artifact
    arch, version = host_target()
    reason = litert_refusal(artifact)
    package, task_root = None, None
    if reason is None:
        package = build_zip(artifact, arch, version, scratch / "dist", scratch / "staging")
        task_root = unpack(package.path, scratch / "task")
    image = build(scratch / "image")
    bake_model(image, artifact)
    return Prepared(workload, package, reason or "", task_root, image, write_event(workload, scratch))


def measure(workload: Workload, runs: int, scratch: Path) -> dict:
    return measure_cold(prepare(workload, scratch), runs)


def measure_cold(prepared: Prepared, runs: int, baseline: bool = True) -> dict:
    """Time each runtime's init in fresh processes (each handler's answer checked), and weigh each
    deployable; `baseline` adds TensorFlow without a server, which `make bench` compares against."""
    image, event, check = prepared.image, str(prepared.event), prepared.workload.check_lambda
    image_env = {"PATH": image.path, "TWINSERVE_RUNTIME": image.runtime}
    starts = []
    if prepared.package and prepared.task_root:
        starts.append(time_zip(prepared.task_root, prepared.event, runs, check))
    image_python = [str(image.venv / "bin" / "python")]
    starts.append(repeat(IMAGE_NAME, runs, image_python, HANDLER, image.app, image_env, [event], check))
    if baseline:
        artifact = str(prepared.workload.artifact)
        starts.append(repeat(BASELINE_NAME, runs, [sys.executable], BASELINE, REPO, {}, [event, artifact]))
    package = prepared.package
    sizes = Sizes(
        package.zipped_bytes / 2**20 if package else None,
        package.unzipped_bytes / 2**20 if package else None,
        image.installed_bytes() / 2**20,
    )
    return {
        "model": prepared.workload.describe(),
        "lambda_package": {"package": prepared.package_kind, "reason": prepared.package_reason},
        "cold_starts": [asdict(s) for s in starts],
        "server_start_seconds": statistics.median(server_start_seconds(image) for _ in range(min(runs, 3))),
        "sizes": asdict(sizes),
        "python": host_target()[1],
    }


def report(data: dict) -> str:
    model = data["model"]
    lines = [f"Model {model['name']} v{model['version']}, its own example ({model['example_rows']} row).", "",
             "| init (import + load + first prediction) | median s | max s | median RSS MiB | max RSS MiB |",
             "|---|---:|---:|---:|---:|"]  # fmt: skip
    lines += [
        f"| {s['name']} | {s['median_seconds']:.3f} | {s['max_seconds']:.3f} "
        f"| {s['median_rss_mib']:.0f} | {s['max_rss_mib']:.0f} |"
        for s in data["cold_starts"]
    ]
    starts = {s["name"]: s for s in data["cold_starts"]}
    tf, base, sizes = starts[IMAGE_NAME], starts[BASELINE_NAME], data["sizes"]
    lines.append("")
    if ZIP_NAME in starts:
        zip_ = starts[ZIP_NAME]
        lines += [
            f"- Zip handler vs TensorFlow image handler: "
            f"init {zip_['median_seconds'] / tf['median_seconds']:.3f}x "
            f"(target ≤ 0.1), peak RSS {zip_['median_rss_mib'] / tf['median_rss_mib']:.3f}x (target ≤ 0.2).",
            f"- Zip handler vs the baseline: init {zip_['median_seconds'] / base['median_seconds']:.3f}x.",
            f"- Lambda zip: {sizes['zip_mib']:.1f} MiB zipped, {sizes['zip_unzipped_mib']:.1f} MiB unzipped.",
        ]
    else:
        lines.append(f"- No Lambda zip: {data['lambda_package']['reason']}; the function runs the image.")
    lines += [
        f"- Image handler vs the baseline: init {tf['median_seconds'] / base['median_seconds']:.3f}x.",
        f"- HTTP server in the image, start to ready: {data['server_start_seconds']:.2f} s.",
        f"- Image contents (venv + app): {sizes['image_installed_mib']:.0f} MiB.",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    add_model_arguments(parser)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cold-start-") as scratch:
        try:
            data = measure(from_arguments(args), args.runs, Path(scratch))
        except WrongAnswer as error:
            print(f"error: {error}; its figures are not reported", file=sys.stderr)
            return 1
    print(report(data))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
