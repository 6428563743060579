"""Captured records (serving/capture.py) from where an environment writes them.

Files of log lines (what `kubectl logs` or an export of a log group gives: any line that holds a
record, with or without a log prefix, others skipped) or the function's CloudWatch log group over a
time window, read with the read-only role's `logs:FilterLogEvents`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
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
