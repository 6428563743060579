"""Captured records (serving/capture.py) from where an environment writes them.

Files of log lines (what `kubectl logs` or an export of a log group gives: any line that holds a
record, with or without a log prefix, others skipped), the function's CloudWatch log group over a
time window (the read-only role's `logs:FilterLogEvents`), or its capture archive over a window
(`captureArchive`: gzipped JSON lines under `<prefix>YYYY/MM/DD/HH/`, the hour Firehose received them).
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from program.capture_archive import CAPTURE_FILTER as CLOUDWATCH_FILTER  # the archive's subscription's too

from serving.contract import CAPTURE_SCHEMA


def parse_lines(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Each record among the lines; a line's prefix before the JSON (a timestamp, a pod name) is skipped."""
    for line in lines:
        start = line.find('{"schema"')
        if start < 0:
            continue
        try:
            record = json.loads(line[start:])
        except ValueError:
            continue  # a line cut short by a log pipeline is not a record
        if isinstance(record, dict) and record.get("schema") == CAPTURE_SCHEMA:
            yield record


def from_files(paths: Iterable[Path]) -> Iterator[dict[str, Any]]:
    for path in paths:
        with path.open(encoding="utf-8", errors="replace") as lines:
            yield from parse_lines(lines)


class RecordsUnavailable(RuntimeError):
    """The records' home cannot be read; the message names it and why."""


def from_cloudwatch(client: Any, log_group: str, start_ms: int, end_ms: int) -> Iterator[dict[str, Any]]:
    """Every record in the log group between the two times (milliseconds since the epoch)."""
    from botocore.exceptions import BotoCoreError, ClientError

    pages = client.get_paginator("filter_log_events").paginate(
        logGroupName=log_group, startTime=start_ms, endTime=end_ms, filterPattern=CLOUDWATCH_FILTER
    )
    try:
        for page in pages:
            yield from parse_lines(event["message"] for event in page.get("events", []))
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            raise RecordsUnavailable(
                f"log group {log_group} not found: does this environment deploy the lambda runtime?"
            ) from None
        raise RecordsUnavailable(f"reading {log_group}: {error}") from None
    except BotoCoreError as error:
        raise RecordsUnavailable(f"reading {log_group}: {error}") from None


def _archive_location(uri: str) -> tuple[str, str]:
    """`s3://bucket/prefix/` → (bucket, prefix), or the mistake named."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket or not prefix.endswith("/"):
        raise RecordsUnavailable(
            f"archive {uri!r} is not s3://<bucket>/<model>/records/ (the stack's captureArchive output)"
        )
    return bucket, prefix


def hours_between(start_ms: int, end_ms: int) -> list[str]:
    """The archive's hour folders (`YYYY/MM/DD/HH/`, UTC) that a window touches, oldest first."""
    hour = datetime.fromtimestamp(start_ms / 1000, UTC).replace(minute=0, second=0, microsecond=0)
    end = datetime.fromtimestamp(end_ms / 1000, UTC)
    folders = []
    while hour <= end:
        folders.append(hour.strftime("%Y/%m/%d/%H/"))
        hour += timedelta(hours=1)
    return folders


def from_archive(client: Any, uri: str, start_ms: int, end_ms: int) -> Iterator[dict[str, Any]]:
    """Every record the archive received in the hours the window touches (the first and last hour whole:
    objects are named by the hour they arrived, not by each record's time)."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = _archive_location(uri)
    paginator = client.get_paginator("list_objects_v2")
    try:
        for folder in hours_between(start_ms, end_ms):
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix + folder):
                for item in page.get("Contents", []):
                    body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                    try:
                        text = gzip.decompress(body).decode("utf-8", errors="replace")
                    except (OSError, EOFError, zlib.error):
                        continue  # not one of the stream's objects
                    yield from parse_lines(text.splitlines())
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code == "NoSuchBucket":
            raise RecordsUnavailable(
                f"bucket {bucket} not found: did the bootstrap make capture buckets "
                "(captureArchiveDays above 0) in this account and region?"
            ) from None
        raise RecordsUnavailable(f"reading {uri}: {error}") from None
    except BotoCoreError as error:
        raise RecordsUnavailable(f"reading {uri}: {error}") from None
