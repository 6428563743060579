"""Shadow traffic on Lambda, each function as Lambda runs it: the handler under AWS's Runtime Interface
Emulator with the managed runtime's runtime interface client and SDK. Client events go to the stable
function, which hands each sampled request to `<function>:shadow` through Lambda's Invoke API; a
stand-in for that API (it queues the event, answers 202 and invokes the shadow's emulator, as an
asynchronous invoke does; no alias, a 404 ResourceNotFoundException) sits on loopback. The verdicts
are the embedded-metric-format lines each function logged."""

from __future__ import annotations

import copy
import json
import queue
import sys
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from serving.contract import GOLDEN_FILE, GoldenSet, Metadata
from tests.serving.conftest import MANAGED_RUNTIME, load_event
from tests.serving.emulator import emulated
from tests.serving.events import lambda_body
from tests.workflows import faulty_models

REPO = Path(__file__).resolve().parents[2]
FUNCTION = "twinserve-iris-dev"
SHADOW = f"{FUNCTION}:shadow"


class InvokeApi(ThreadingHTTPServer):
    """Lambda's Invoke API for one function alias: an asynchronous invoke is queued and answered 202,
    then delivered to `deliver`; any other function or alias is a ResourceNotFoundException."""

    def __init__(self, alias: str, deliver: Callable[[dict[str, Any]], Any]) -> None:
        super().__init__(("127.0.0.1", 0), _InvokeHandler)
        self.alias, self.deliver = alias, deliver
        self.events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.invocations: list[tuple[str, str]] = []  # (function, invocation type)
        self.delivered = threading.Semaphore(0)
        self.worker = threading.Thread(target=self._deliver)
        self.worker.start()
        self.serving = threading.Thread(target=self.serve_forever)
        self.serving.start()

    def _deliver(self) -> None:
        while (event := self.events.get()) is not None:
            self.deliver(event)
            self.delivered.release()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.events.put(None)
        self.worker.join(timeout=60)
        self.shutdown()
        self.serving.join(timeout=10)
        self.server_close()


class _InvokeHandler(BaseHTTPRequestHandler):
    server: InvokeApi

    def do_POST(self) -> None:
        payload = self.rfile.read(int(self.headers["content-length"]))
        function = urllib.parse.unquote(self.path.split("/functions/", 1)[1].split("/", 1)[0])
        kind = self.headers.get("x-amz-invocation-type", "RequestResponse")
        self.server.invocations.append((function, kind))
        if function != self.server.alias:
            body = json.dumps({"Type": "User", "Message": f"Function not found: {function}"}).encode()
            self.send_response(404)
            self.send_header("x-amzn-ErrorType", "ResourceNotFoundException")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.server.events.put(json.loads(payload))
        self.send_response(202)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def function(
    managed_runtime: Path, model_root: Path, log: Path, **settings: str
) -> Iterator[Callable[[dict[str, Any]], dict[str, Any]]]:
    """One version of the function under the emulator, with the environment Lambda gives it."""
    bootstrap = [sys.executable, "-c", MANAGED_RUNTIME, str(REPO), str(managed_runtime),
                 "serving.lambda_handler.handler"]  # fmt: skip
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_LAMBDA_FUNCTION_NAME": FUNCTION,
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "ASIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "example",
        "AWS_SESSION_TOKEN": "example",
        "TWINSERVE_MODEL_ROOT": str(model_root),
        "TWINSERVE_RUNTIME": "litert",
        **settings,
    }
    with emulated(bootstrap, REPO, env, log) as invoke:
        yield invoke


def emf(log: Path) -> list[dict[str, Any]]:
    """The embedded-metric-format records a function logged."""
    records = []
    for line in log.read_text().splitlines():
        start = line.find('{"_aws"')
        if start >= 0:
            records.append(json.loads(line[start:]))
    return records


def client_event(body: dict[str, Any]) -> dict[str, Any]:
    event = copy.deepcopy(load_event("function_url_infer"))
    event["rawPath"] = "/v2/models/iris/infer"
    event["requestContext"]["http"].update(method="POST", path="/v2/models/iris/infer")
    event["body"], event["isBase64Encoded"] = json.dumps(body), False
    return event


@pytest.fixture(scope="module")
def golden(model_root: Path) -> GoldenSet:
    artifact = model_root / "iris" / "1"
    return GoldenSet.read(artifact / GOLDEN_FILE, Metadata.read(artifact))


def top_classes(answer: dict[str, Any]) -> list[int]:
    (output,) = [o for o in answer["outputs"] if o["name"] == "probabilities"]
    width = output["shape"][1]
    rows = [output["data"][i : i + width] for i in range(0, len(output["data"]), width)]
    return [row.index(max(row)) for row in rows]


def test_a_swapped_shadow_is_counted_row_by_row_and_no_client_sees_its_answers(
    managed_runtime: Path, model_root: Path, golden: GoldenSet, tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:  # fmt: skip
    swapped = faulty_models.built_iris(
        tmp_path_factory.mktemp("swapped"), model_root / "iris" / "1", "swapped"
    )
    shadow_log, stable_log = tmp_path / "shadow.log", tmp_path / "stable.log"
    with function(managed_runtime, swapped, shadow_log) as shadow:
        api = InvokeApi(SHADOW, shadow)
        try:
            settings = {"TWINSERVE_SHADOW_FUNCTION": SHADOW, "TWINSERVE_SHADOW_SAMPLE_RATE": "1",
                        "AWS_ENDPOINT_URL_LAMBDA": api.url}  # fmt: skip
            with function(managed_runtime, model_root, stable_log, **settings) as stable:
                answers = [stable(client_event(request.v2_request())) for request in golden.requests]
            for _ in golden.requests:
                assert api.delivered.acquire(timeout=60), shadow_log.read_text()
        finally:
            api.close()
    # The clients got the stable answers, exactly as exported.
    assert [a["statusCode"] for a in answers] == [200] * len(golden.requests)
    bodies = [json.loads(lambda_body(a)) for a in answers]
    assert golden.judge(bodies) == "", golden.judge(bodies)
    assert api.invocations == [(SHADOW, "Event")] * len(golden.requests)
    mirrored = [r for r in emf(stable_log) if "ShadowMirrorRequests" in r]
    assert [r["Outcome"] for r in mirrored] == ["mirrored"] * len(golden.requests)
    assert mirrored[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "twinserve"
    verdicts = [r for r in emf(shadow_log) if "ShadowRowsAgreed" in r]
    assert len(verdicts) == len(golden.requests)
    assert {tuple(d) for r in verdicts for d in r["_aws"]["CloudWatchMetrics"][0]["Dimensions"]} == {
        ("Function", "Version")
    }
    stable_tops = [c for body in bodies for c in top_classes(body)]
    disagreed = sum(r["ShadowRowsDisagreed"] for r in verdicts)
    assert disagreed == sum(1 for c in stable_tops if c != 0)  # versicolor and virginica, swapped
    assert sum(r["ShadowRowsAgreed"] for r in verdicts) == stable_tops.count(0)
    assert 0.5 < disagreed / len(stable_tops) < 0.8
    # The stable version's prediction mix, by class, for a canary's to be compared with.
    mix = [r for r in emf(stable_log) if "Predictions" in r]
    assert {(r["Function"], r["Version"]) for r in mix} == {(FUNCTION, "$LATEST")}
    for column in range(3):
        counted = sum(r["Predictions"] for r in mix if r["Class"] == str(column))
        assert counted == stable_tops.count(column)
    assert not [r for r in emf(shadow_log) if "Predictions" in r]  # a mirrored request is no client's


def test_without_a_shadow_alias_mirroring_pauses_and_the_clients_are_answered(
    managed_runtime: Path, model_root: Path, golden: GoldenSet, tmp_path: Path
) -> None:
    """No shadow phase runs (the alias does not exist): the first sampled request learns it, the next
    ones within MISSING_PAUSE_SECONDS do not call the API at all."""
    api = InvokeApi("another-function:shadow", lambda event: None)
    log = tmp_path / "stable.log"
    try:
        settings = {"TWINSERVE_SHADOW_FUNCTION": SHADOW, "TWINSERVE_SHADOW_SAMPLE_RATE": "1",
                    "AWS_ENDPOINT_URL_LAMBDA": api.url}  # fmt: skip
        with function(managed_runtime, model_root, log, **settings) as stable:
            answers = [stable(client_event(request.v2_request())) for request in golden.requests]
    finally:
        api.close()
    assert [a["statusCode"] for a in answers] == [200] * len(golden.requests)
    assert api.invocations == [(SHADOW, "Event")]
    outcomes = [r["Outcome"] for r in emf(log) if "ShadowMirrorRequests" in r]
    assert outcomes == ["missing"] + ["paused"] * (len(golden.requests) - 1)


def test_a_shadow_event_that_is_not_a_mirrored_request_is_refused_and_counted(
    managed_runtime: Path, model_root: Path, tmp_path: Path
) -> None:
    log = tmp_path / "shadow.log"
    with function(managed_runtime, model_root, log) as shadow:
        answer = shadow({"twinserve-shadow": {"request": "{}"}})
    assert answer["status"] == 400
    assert "not a mirrored request" in answer["error"]
    assert [r["ShadowFailed"] for r in emf(log) if "ShadowFailed" in r] == [1]
