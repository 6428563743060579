"""Cold start and size: what a Lambda init or a new pod costs on each runtime, measured in fresh processes.

Init = import + model load + first prediction, timed inside the process (what Lambda
reports as Init Duration plus the first invocation), with the process's peak RSS.
Run as `python -m serving.bench.cold_start`; `make bench` and `make compare` call it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from serving.bench.image import REPO, Image, bake_model, build
from serving.packaging.lambda_zip import Package
from serving.packaging.lambda_zip import build as build_zip

EVENT = REPO / "tests" / "events" / "http_api_predict.json"
# Timed in the child so interpreter start-up noise of the parent never counts; ru_maxrss is in KiB on Linux.
PROBE = """
import json, resource, sys, time
start = time.perf_counter()
{load}
result = {predict}
elapsed = time.perf_counter() - start
rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"seconds": elapsed, "rss_mib": rss_mib}}))
"""
HANDLER = "from serving.lambda_handler import handler", "handler(json.load(open(sys.argv[1])), None)"
ZIP_HANDLER = "sys.path.insert(0, sys.argv[2]); " + HANDLER[0], HANDLER[1]
BASELINE = (
    "import keras, numpy as np; model = keras.Sequential("
    "[keras.layers.TFSMLayer(sys.argv[2], call_endpoint='serving_default')])",
    "model.predict(np.asarray([[5.1, 3.5, 1.4, 0.2]], dtype=np.float32), verbose=0)",
)


@dataclass(frozen=True)
class ColdStart:
    name: str
    median_seconds: float
    max_seconds: float
    median_rss_mib: float
    max_rss_mib: float


@dataclass(frozen=True)
class Sizes:
    zip_mib: float
    zip_unzipped_mib: float
    image_installed_mib: float


def init_once(command: list[str], code: tuple[str, str], cwd: Path, env: dict[str, str]) -> dict[str, float]:
    probe = PROBE.format(load=code[0], predict=code[1])
    result = subprocess.run(
        [*command, "-c", probe, str(EVENT), *env.pop("ARGS", "").split()],
        cwd=cwd, env={**env, "TF_CPP_MIN_LOG_LEVEL": "3"}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"cold start probe failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def repeat(
    name: str, runs: int, command: list[str], code: tuple[str, str], cwd: Path, env: dict
) -> ColdStart:
    samples = [init_once(command, code, cwd, dict(env)) for _ in range(runs)]
    seconds, rss = [s["seconds"] for s in samples], [s["rss_mib"] for s in samples]
    return ColdStart(name, statistics.median(seconds), max(seconds), statistics.median(rss), max(rss))


def server_start_seconds(image: Image) -> float:
    """A new pod's delay: `python -m serving` from the image's venv until /v2/health/ready answers 200."""
    port = "18181"
    env = {"PATH": image.path, "PORT": port, "TWINSERVE_WORKERS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
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
    """The deployables, recreated here: the zip unpacked as /var/task, and the image's venv and /app."""

    artifact: Path
    package: Package
    task_root: Path
    image: Image


def prepare(model_root: Path, scratch: Path) -> Prepared:
    """Build the zip for this interpreter and the image's venv with the model baked in."""
    artifact = next(model_root.glob("*/*/metadata.json")).parent
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    arch = "x86_64" if os.uname().machine == "x86_64" else "arm64"
    package = build_zip(artifact, arch, version, scratch / "dist", scratch / "staging")
    task_root = scratch / "task"
    with zipfile.ZipFile(package.path) as archive:
        archive.extractall(task_root)
    image = build(scratch / "image")
    bake_model(image, artifact)
    return Prepared(artifact, package, task_root, image)


def measure(model_root: Path, runs: int, scratch: Path) -> dict:
    return measure_cold(prepare(model_root, scratch), runs)


def measure_cold(prepared: Prepared, runs: int) -> dict:
    """Time each runtime's init in fresh processes, and weigh each deployable."""
    artifact, package, task_root, image = (
        prepared.artifact,
        prepared.package,
        prepared.task_root,
        prepared.image,
    )
    clean = [sys.executable, "-I", "-S"]
    image_python = [str(image.venv / "bin" / "python")]
    image_env = {"PATH": image.path, "TWINSERVE_RUNTIME": image.runtime}
    starts = [
        repeat("Lambda zip (LiteRT)", runs, clean, ZIP_HANDLER, task_root.parent, {"ARGS": str(task_root)}),
        repeat("Lambda image (TensorFlow)", runs, image_python, HANDLER, image.app, image_env),
        repeat(
            "baseline (keras load + predict)", runs, [sys.executable], BASELINE, REPO, {"ARGS": str(artifact)}
        ),
    ]
    sizes = Sizes(
        package.zipped_bytes / 2**20, package.unzipped_bytes / 2**20, image.installed_bytes() / 2**20
    )
    return {
        "cold_starts": [asdict(s) for s in starts],
        "server_start_seconds": statistics.median(server_start_seconds(image) for _ in range(3)),
        "sizes": asdict(sizes),
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
    }


def report(data: dict) -> str:
    lines = ["| init (import + load + first prediction) | median s | max s | median RSS MiB | max RSS MiB |",
             "|---|---:|---:|---:|---:|"]  # fmt: skip
    lines += [
        f"| {s['name']} | {s['median_seconds']:.3f} | {s['max_seconds']:.3f} "
        f"| {s['median_rss_mib']:.0f} | {s['max_rss_mib']:.0f} |"
        for s in data["cold_starts"]
    ]
    zip_, tf, base = data["cold_starts"]
    sizes = data["sizes"]
    lines += [
        "",
        f"- Zip handler vs TensorFlow image handler: "
        f"init {zip_['median_seconds'] / tf['median_seconds']:.3f}x "
        f"(target ≤ 0.1), peak RSS {zip_['median_rss_mib'] / tf['median_rss_mib']:.3f}x (target ≤ 0.2).",
        f"- Zip handler vs the baseline: init {zip_['median_seconds'] / base['median_seconds']:.3f}x.",
        f"- HTTP server in the image, start to ready: {data['server_start_seconds']:.2f} s.",
        f"- Lambda zip: {sizes['zip_mib']:.1f} MiB zipped, {sizes['zip_unzipped_mib']:.1f} MiB unzipped; "
        f"image contents (venv + app): {sizes['image_installed_mib']:.0f} MiB.",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-root", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cold-start-") as scratch:
        data = measure(args.model_root, args.runs, Path(scratch))
    print(report(data))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
