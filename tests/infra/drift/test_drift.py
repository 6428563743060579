"""The drift measure on records written as the server writes them: categories a reference never had,
too few records, other versions, and the function's log group read as the read-only role reads it."""

from __future__ import annotations

import gzip
import json
import time
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from drift import records
from drift.__main__ import main
from drift.report import markdown, measure
from moto import mock_aws

from serving.contract import (
    CAPTURE_SCHEMA,
    READS_CATEGORY,
    READS_VALUE,
    Example,
    Metadata,
    Tensor,
    TensorSpec,
)  # fmt: skip

REFERENCE = {
    "schema": "twinserve.reference/1", "source": "training", "rows": 100,
    "features": [
        {"name": "price[0]", "group": "inputs", "tensor": "price", "index": 0, "reads": READS_VALUE,
         "edges": [10.0, 20.0], "shares": [0.3, 0.4, 0.3]},
        {"name": "category[0]", "group": "inputs", "tensor": "category", "index": 0, "reads": READS_CATEGORY,
         "shares": {"1": 0.5, "2": 0.5}},
    ],
}  # fmt: skip


def record(price: float, category: int, version: str = "1") -> dict:
    return {
        "schema": CAPTURE_SCHEMA, "model": "shop", "model_version": version, "status": 200,
        "inputs": [{"name": "price", "datatype": "FP32", "shape": [1, 1], "data": [price]},
                   {"name": "category", "datatype": "INT64", "shape": [1, 1], "data": [category]}],
    }  # fmt: skip


def like_reference(count: int) -> list[dict]:
    prices = [5.0] * 3 + [15.0] * 4 + [25.0] * 3
    return [record(prices[i % 10], 1 + i % 2) for i in range(count)]


def test_an_unseen_category_is_named_and_a_like_stream_is_not_drift() -> None:
    calm = measure(REFERENCE, like_reference(200), "shop", "1", max_psi=0.2, min_records=100)
    assert calm.drifting == []
    moved = like_reference(100) + [{**r, "inputs": [r["inputs"][0], {**r["inputs"][1], "data": [7]}]}
                                   for r in like_reference(100)]  # fmt: skip
    drift = measure(REFERENCE, moved, "shop", "1", max_psi=0.2, min_records=100)
    assert [f.name for f in drift.drifting] == ["category[0]"]
    assert drift.drifting[0].unseen == ["7"]
    assert "| `category[0]` ⚠ |" in markdown(drift)


def test_too_few_records_give_no_verdict_and_other_versions_are_skipped() -> None:
    stream = [record(99.0, 9) for _ in range(50)] + [record(15.0, 1, version="2") for _ in range(500)]
    drift = measure(REFERENCE, stream, "shop", "1", max_psi=0.2, min_records=100)
    assert (drift.records, drift.skipped, drift.drifting) == (50, 500, [])
    assert "Not judged: 50 records of this version, fewer than the 100 a verdict needs." in markdown(drift)


def test_log_lines_with_prefixes_cut_lines_and_other_logs_are_read_right() -> None:
    good = json.dumps(record(15.0, 1))
    lines = [f"2026-12-03T10:00:00Z pod-a {good}", '{"ts": 1, "path": "/v2"}', good[:40], "START RequestId"]
    assert list(records.parse_lines(lines)) == [record(15.0, 1)]


@mock_aws
def test_the_functions_log_group_is_read_over_the_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    logs = boto3.client("logs")
    logs.create_log_group(logGroupName="/aws/lambda/twinserve-shop-dev")
    logs.create_log_stream(logGroupName="/aws/lambda/twinserve-shop-dev", logStreamName="s")
    now = int(time.time() * 1000)
    events = [
        {"timestamp": now - 1000 + i, "message": json.dumps(r)} for i, r in enumerate(like_reference(3))
    ]
    logs.put_log_events(logGroupName="/aws/lambda/twinserve-shop-dev", logStreamName="s", logEvents=events)
    read = list(records.from_cloudwatch(logs, "/aws/lambda/twinserve-shop-dev", now - 60_000, now + 1000))
    assert read == like_reference(3)


def test_a_missing_reference_is_named_with_exit_2(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "r.log").write_text("")
    assert main(["--reference", str(tmp_path), "--records", str(tmp_path / "r.log")]) == 2
    assert "reference.json not found: export the model again" in capsys.readouterr().err


@mock_aws
def test_a_log_group_that_does_not_exist_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    write_reference(tmp_path)
    assert main(["--reference", str(tmp_path), "--log-group", "/aws/lambda/twinserve-shop-dev"]) == 2
    assert "log group /aws/lambda/twinserve-shop-dev not found: does this environment deploy the lambda" in (
        capsys.readouterr().err
    )


def write_reference(tmp_path) -> None:
    """shop's reference.json and metadata.json, as `make model` writes them."""
    (tmp_path / "reference.json").write_text(json.dumps(REFERENCE))
    Metadata(
        "shop", 1,
        inputs=(TensorSpec("price", "FP32", (-1, 1)), TensorSpec("category", "INT64", (-1, 1))),
        outputs=(TensorSpec("score", "FP32", (-1, 1)),),
        example=Example(
            (Tensor("price", "FP32", (1, 1), (15.0,)), Tensor("category", "INT64", (1, 1), (1,))),
            (Tensor("score", "FP32", (1, 1), (0.5,)),),
        ),
    ).write(tmp_path)  # fmt: skip


def test_only_environments_with_the_function_and_capture_on_are_read() -> None:
    from drift.environments import capturing

    assert capturing() == []  # capture is off in every committed environment
    forks = {
        "staging": {"captureSampleRate": "0.1"},
        "prod": {"captureSampleRate": "0.1", "runtimes": '["kubernetes"]'},
    }
    assert capturing(forks) == [{"env": "staging", "log_group": "/aws/lambda/twinserve-iris-staging"}]


def archived(lines: list[str]) -> bytes:
    """An object as the archive's Firehose stream writes it: JSON lines, gzipped."""
    return gzip.compress("".join(f"{line}\n" for line in lines).encode())


@mock_aws
def test_the_capture_archive_is_read_over_the_hours_the_window_touches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    s3 = boto3.client("s3")
    bucket = "twinserve-capture-123456789012-eu-west-1-dev"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    now = datetime.now(UTC)
    hour = now.strftime("%Y/%m/%d/%H")
    old = (now - timedelta(days=3)).strftime("%Y/%m/%d/%H")
    stream = like_reference(4)
    s3.put_object(
        Bucket=bucket, Key=f"shop/records/{hour}/a.gz", Body=archived([json.dumps(r) for r in stream[:2]])
    )
    s3.put_object(Bucket=bucket, Key=f"shop/records/{hour}/b.gz", Body=archived([json.dumps(stream[2]), ""]))
    s3.put_object(Bucket=bucket, Key=f"shop/records/{old}/c.gz", Body=archived([json.dumps(stream[3])]))
    s3.put_object(Bucket=bucket, Key=f"shop/records/{hour}/not-gzip.txt", Body=b"plain")
    s3.put_object(Bucket=bucket, Key=f"other/records/{hour}/d.gz", Body=archived([json.dumps(stream[3])]))
    end = int(now.timestamp() * 1000)
    uri = f"s3://{bucket}/shop/records/"
    assert list(records.from_archive(s3, uri, end - 3_600_000, end)) == stream[:3]
    assert len(list(records.from_archive(s3, uri, end - 4 * 24 * 3_600_000, end))) == 4


@mock_aws
@pytest.mark.parametrize(
    ("uri", "message"),
    [
        (
            "s3://twinserve-capture-123456789012-eu-west-1-dev/shop/records/",
            "bucket twinserve-capture-123456789012-eu-west-1-dev not found: did the bootstrap make capture",
        ),
        (
            "twinserve-capture/shop/records/",
            "is not s3://<bucket>/<model>/records/ (the stack's captureArchive output)",
        ),
        ("s3://bucket/shop/records", "is not s3://<bucket>/<model>/records/"),
    ],
)
def test_an_archive_that_cannot_be_read_is_named_with_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path, capsys: pytest.CaptureFixture[str], uri: str, message: str
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    write_reference(tmp_path)
    assert main(["--reference", str(tmp_path), "--archive", uri]) == 2
    assert message in capsys.readouterr().err


def test_hours_between_names_every_hour_folder_a_window_touches() -> None:
    start = int(datetime(2026, 12, 31, 22, 30, tzinfo=UTC).timestamp() * 1000)
    end = int(datetime(2027, 1, 1, 0, 5, tzinfo=UTC).timestamp() * 1000)
    assert records.hours_between(start, end) == ["2026/12/31/22/", "2026/12/31/23/", "2027/01/01/00/"]
