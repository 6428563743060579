"""Shadow traffic between real servers: a stable Iris mirrors what it answered to a shadow model and counts
how the shadow's answers compare, while its clients get exactly what it answers alone; a shadow that is
gone or stuck costs them nothing."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from serving.contract import GOLDEN_FILE, GoldenSet, Metadata
from serving.shadow import TIMEOUT_SECONDS
from tests.ports import free_port
from tests.serving.conftest import Server, start_server, stop_server
from tests.workflows.faulty_models import built_iris


def counted(server: Server) -> dict[tuple[str, str], float]:
    """The shadow counters of a server's /metrics, by (metric, outcome or top_class)."""
    text = httpx.get(server.metrics_url, timeout=10).text
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "twinserve_shadow_requests_total":
                found["requests", sample.labels["outcome"]] = sample.value
            elif sample.name == "twinserve_shadow_rows_total":
                found["rows", sample.labels["top_class"]] = sample.value
            elif sample.name == "twinserve_shadow_request_duration_seconds_count":
                found["latency", "count"] = sample.value
    return found


def settled(server: Server, done: int, seconds: float = 20) -> dict[tuple[str, str], float]:
    """The counters once `done` requests were mirrored, compared or given up on."""
    deadline = time.monotonic() + seconds
    while True:
        seen = counted(server)
        finished = sum(seen.get(("requests", o), 0) for o in ("compared", "differed", "failed", "dropped",
                                                               "paused", "skipped"))  # fmt: skip
        if finished >= done or time.monotonic() > deadline:
            return seen
        time.sleep(0.1)


@pytest.fixture(scope="module")
def golden(artifact: Path) -> GoldenSet:
    return GoldenSet.read(artifact / GOLDEN_FILE, Metadata.read(artifact))


@pytest.fixture(scope="module")
def variants(model_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    artifact = model_root / "iris" / "1"
    return {v: built_iris(tmp_path_factory.mktemp(v), artifact, v) for v in ("swapped", "retrained")}


@pytest.fixture
def pair(request: pytest.FixtureRequest, variants: dict[str, Path], model_root: Path) -> Iterator[tuple]:
    """A shadow of the variant and a stable Iris mirroring every answered request to it."""
    shadow = start_server(variants[request.param], TWINSERVE_RUNTIME="litert", TWINSERVE_DRAIN_SECONDS="0")
    stable = start_server(model_root, TWINSERVE_RUNTIME="litert", TWINSERVE_DRAIN_SECONDS="0",
                          TWINSERVE_SHADOW_URL=shadow.url, TWINSERVE_SHADOW_SAMPLE_RATE="1")  # fmt: skip
    yield stable, shadow
    stop_server(stable)
    stop_server(shadow)


def ask(stable: Server, golden: GoldenSet) -> list[dict]:
    with stable.client() as client:
        return [client.post("/v2/models/iris/infer", json=r.v2_request()).json() for r in golden.requests]


def tops(golden: GoldenSet) -> list[int]:
    return [
        int(i) for r in golden.requests for i in np.argmax(np.reshape(r.outputs[0].data, (-1, 3)), axis=1)
    ]


@pytest.mark.parametrize("pair", ["swapped"], indirect=True)
def test_a_shadow_with_two_classes_swapped_disagrees_on_their_rows_and_clients_never_see_it(
    pair: tuple[Server, Server], golden: GoldenSet
) -> None:
    stable, shadow = pair
    answers = ask(stable, golden)
    assert golden.judge(answers) == ""  # exactly what the stable model answers alone
    with stable.client() as client:  # TF Serving's protocol is mirrored as the same question
        rows = np.reshape(golden.requests[0].inputs[0].data, (-1, 4)).tolist()
        assert client.post("/v1/models/iris:predict", json={"instances": rows}).status_code == 200
    seen = settled(stable, len(golden.requests) + 1)
    classes = tops(golden) + tops(golden)[:8]
    assert seen["rows", "disagreed"] == sum(c != 0 for c in classes)  # versicolor and virginica swapped
    assert seen["rows", "agreed"] == classes.count(0)
    assert seen["requests", "mirrored"] == seen["latency", "count"] == len(golden.requests) + 1
    assert seen["requests", "differed"] == len(golden.requests) + 1  # every request holds such a row
    shadow_served = httpx.get(shadow.metrics_url, timeout=10).text
    assert 'rest_server_requests_total{model="iris",route="v2_infer",status_code="200"} 5.0' in shadow_served


@pytest.mark.parametrize("pair", ["retrained"], indirect=True)
def test_an_honest_retrain_in_shadow_differs_within_its_answers_but_agrees_on_every_top_class(
    pair: tuple[Server, Server], golden: GoldenSet
) -> None:
    stable, _ = pair
    assert golden.judge(ask(stable, golden)) == ""
    seen = settled(stable, len(golden.requests))
    assert seen["rows", "agreed"] == golden.rows
    assert ("rows", "disagreed") not in seen
    assert seen["requests", "differed"] > 0  # its probabilities moved past the contract's tolerance


def test_a_shadow_that_is_gone_or_stuck_costs_clients_nothing(model_root: Path, golden: GoldenSet) -> None:
    """Gone (nothing listens): the first mirror fails and mirroring pauses. Stuck (accepts, never
    answers): one request waits on it, one in the queue, every other is dropped and counted."""
    with socket.socket() as stuck:
        stuck.bind(("127.0.0.1", 0))
        stuck.listen(64)
        gone_port = free_port()
        for url, outcome in ((f"http://127.0.0.1:{gone_port}", "paused"),
                             (f"http://127.0.0.1:{stuck.getsockname()[1]}", "dropped")):  # fmt: skip
            stable = start_server(model_root, TWINSERVE_RUNTIME="litert", TWINSERVE_DRAIN_SECONDS="0",
                                  TWINSERVE_SHADOW_URL=url, TWINSERVE_SHADOW_SAMPLE_RATE="1",
                                  TWINSERVE_SHADOW_QUEUE="1")  # fmt: skip
            try:
                started = time.monotonic()
                for _ in range(5):
                    assert golden.judge(ask(stable, golden)) == ""
                took = time.monotonic() - started
                seen = settled(stable, 19, seconds=5)
            finally:
                stop_server(stable)
            assert took < TIMEOUT_SECONDS, took  # 20 answers: one waiting on the stuck shadow would take 10 s
            assert seen["requests", outcome] >= 17, seen
            assert ("rows", "agreed") not in seen
