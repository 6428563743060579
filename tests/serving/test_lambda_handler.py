"""The Lambda handler answers real event payloads exactly as the HTTP server answers the same requests."""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import sys
from types import ModuleType

import pytest

from tests.serving.cases import BAD, GOOD, Case
from tests.serving.conftest import REPO, Server, load_event

TEMPLATE = load_event("http_api_predict")


def event_for(case: Case, *, base64_body: bool) -> dict:
    event = copy.deepcopy(TEMPLATE)
    event["rawPath"] = case.path
    event["requestContext"]["http"].update(method=case.method, path=case.path)
    event["headers"] = {"host": "example.execute-api.eu-west-1.amazonaws.com", **case.headers}
    if base64_body:
        event["body"], event["isBase64Encoded"] = base64.b64encode(case.body).decode(), True
    else:
        event["body"], event["isBase64Encoded"] = case.body.decode("latin-1"), False
    return event


def lambda_body(result: dict) -> bytes:
    return base64.b64decode(result["body"]) if result["isBase64Encoded"] else result["body"].encode()


EQUIVALENCE = [c for c in GOOD + BAD if c.id not in {"v2-ready", "v2-model-ready"} and len(c.body) < 1 << 20]


@pytest.mark.parametrize("case", EQUIVALENCE, ids=lambda c: c.id)
def test_same_status_and_body_as_the_http_server(
    lambda_module: ModuleType, litert_server: Server, case: Case
) -> None:
    result = lambda_module.handler(event_for(case, base64_body=True), None)
    with litert_server.client() as client:
        expected = client.request(case.method, case.path, content=case.body, headers=case.headers)
    assert result["statusCode"] == expected.status_code
    assert lambda_body(result) == expected.content
    assert result["headers"]["content-type"] == expected.headers["content-type"]


def test_captured_http_api_event(lambda_module: ModuleType) -> None:
    result = lambda_module.handler(load_event("http_api_predict"), None)
    assert result["statusCode"] == 200
    assert result["isBase64Encoded"] is False
    assert len(json.loads(result["body"])["predictions"][0]) == 3


def test_captured_function_url_event_with_base64_body(lambda_module: ModuleType) -> None:
    result = lambda_module.handler(load_event("function_url_infer"), None)
    body = json.loads(result["body"])
    assert result["statusCode"] == 200
    assert body["id"] == "req-1"
    assert body["outputs"][0]["shape"] == [1, 3]


@pytest.mark.parametrize(
    ("event", "error"),
    [
        ({"foo": "bar"}, "unsupported event"),
        ({**TEMPLATE, "body": "not base64!", "isBase64Encoded": True}, "not valid base64"),
    ],
)
def test_malformed_events_get_a_400(lambda_module: ModuleType, event: dict, error: str) -> None:
    result = lambda_module.handler(event, None)
    assert result["statusCode"] == 400
    assert error in json.loads(result["body"])["error"]


def test_litert_path_never_imports_tensorflow(model_root) -> None:
    code = (
        "import sys, json; from serving.lambda_handler import handler; "
        f"r = handler(json.load(open({str(REPO / 'tests/events/http_api_predict.json')!r})), None); "
        "assert r['statusCode'] == 200, r; print('tensorflow' in sys.modules)"
    )
    env = {**os.environ, "TWINSERVE_MODEL_ROOT": str(model_root)}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
