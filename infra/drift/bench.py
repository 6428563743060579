"""`make bench-drift`: how long a drift report takes over many records (a million by default).

The records are the model's own example (its inputs and TensorFlow's answer, from metadata.json), its
numbers jittered so every bin is visited, written as the server writes them to a file first; the time
is that of reading the file and measuring every feature, as `make drift` does.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from drift.__main__ import load_reference
from drift.records import from_files
from drift.report import measure
from serving.contract import CAPTURE_SCHEMA, Metadata


def write_records(artifact: Path, count: int, path: Path) -> int:
    metadata = Metadata.read(artifact)
    example = metadata.example
    draw = random.Random(0)  # noqa: S311 - jitter for a benchmark, not a secret

    def jitter(tensor: dict) -> dict:
        data = [v * (0.5 + draw.random()) if isinstance(v, float) else v for v in tensor["data"]]
        return {**tensor, "data": data}

    head = {"schema": CAPTURE_SCHEMA, "model": metadata.name,
            "model_version": str(metadata.version), "runtime": "kubernetes",
            "track": "stable", "route": "v2_infer", "status": 200, "error": None}  # fmt: skip
    with path.open("w") as sink:
        for i in range(count):
            record = {**head, "request_id": str(i), "latency_ms": 1.0,
                      "inputs": [jitter(t.to_json()) for t in example.inputs],
                      "outputs": [jitter(t.to_json()) for t in example.outputs]}  # fmt: skip
            sink.write(json.dumps(record) + "\n")
    return path.stat().st_size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reference", type=Path, required=True, help="the model's version directory")
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    reference, model, version = load_reference(args.reference)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "records.log"
        size = write_records(args.reference, args.records, path)
        started = time.perf_counter()
        drift = measure(reference, from_files([path]), model, version, 0.2, 100)
        seconds = time.perf_counter() - started
    print(f"{drift.records:,} records ({size / 1e6:,.0f} MB, {len(drift.features)} features) "
          f"measured in {seconds:.1f} s: {drift.records / seconds:,.0f} records/s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
