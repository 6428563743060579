"""The Lambda handler answers real event payloads exactly as the HTTP server answers the same requests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import ModuleType

import pytest

from tests.serving.cases import Case
from tests.serving.conftest import REPO, Server, load_event
from tests.serving.events import EQUIVALENCE, TEMPLATE, event_for, lambda_body


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
    assert result.stdout.splitlines()[-1] == "False"  # after the handler's own lines (its metrics)
