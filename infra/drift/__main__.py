"""`make drift`: captured records of a time window against the artifact's reference.json.

    python -m drift --reference build/models/iris/1 --records pods.log [--records more.log]
    python -m drift --reference build/models/iris/1 --log-group /aws/lambda/twinserve-iris-dev --hours 24

Writes the markdown report (to --out, and to the job summary when GITHUB_STEP_SUMMARY is set) and
exits 1 when a feature drifted past --max-psi, 2 when an input is wrong, 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from drift import records
from drift.report import markdown, measure
from serving.contract import REFERENCE_FILE, REFERENCE_SCHEMA, Metadata


class DriftInputError(ValueError):
    """An input the report cannot be made from; the message names it."""


def load_reference(artifact: Path) -> tuple[dict[str, Any], str, str]:
    """reference.json and the model name and version it belongs to (metadata.json, read through the
    contract), from a version directory."""
    path = artifact / REFERENCE_FILE
    if not path.is_file():
        raise DriftInputError(
            f"{path} not found: export the model again (`make model`) to write its reference distributions"
        )
    try:
        reference, metadata = json.loads(path.read_text()), Metadata.read(artifact)
    except (OSError, ValueError) as error:  # ContractError is a ValueError naming the file and field
        raise DriftInputError(f"{artifact}: unreadable reference or metadata: {error}") from None
    if reference.get("schema") != REFERENCE_SCHEMA:
        raise DriftInputError(f"{path} is not a {REFERENCE_SCHEMA} document")
    return reference, metadata.name, str(metadata.version)


def _records(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    if args.records:
        missing = [str(p) for p in args.records if not p.is_file()]
        if missing:
            raise DriftInputError(f"records file(s) not found: {missing}")
        return records.from_files(args.records)
    import boto3  # only when reading the cloud

    end = int(time.time() * 1000)
    start = end - int(args.hours * 3600 * 1000)
    if args.archive:
        return records.from_archive(boto3.client("s3"), args.archive, start, end)
    return records.from_cloudwatch(boto3.client("logs"), args.log_group, start, end)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drift", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--reference", type=Path, required=True, help="the model's version directory")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--records", type=Path, action="append", help="a file of log lines holding records")
    source.add_argument("--log-group", help="the function's CloudWatch log group")
    source.add_argument("--archive", help="the function's capture archive, s3://<bucket>/<model>/records/")
    parser.add_argument(
        "--hours", type=float, default=24.0, help="the window read from the log group or archive"
    )
    parser.add_argument("--max-psi", type=float, default=0.2, help="a feature past this index has drifted")
    parser.add_argument("--min-records", type=int, default=100, help="fewer records give no verdict")
    parser.add_argument("--out", type=Path, help="write the markdown report here too")
    args = parser.parse_args(argv)
    if not 0 < args.max_psi < 100 or args.min_records < 1 or args.hours <= 0:
        parser.error("--max-psi must be in (0, 100), --min-records ≥ 1 and --hours > 0")
    try:
        reference, model, version = load_reference(args.reference)
        drift = measure(reference, _records(args), model, version, args.max_psi, args.min_records)
    except (DriftInputError, records.RecordsUnavailable) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    report = markdown(drift)
    sys.stdout.write(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with Path(summary).open("a") as sink:  # the job's summary collects every step's
            sink.write(report)
    return 1 if drift.drifting else 0


if __name__ == "__main__":
    sys.exit(main())
