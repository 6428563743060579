"""The case table as Lambda events (payload 2.0), and their results as bytes, for every Lambda test."""

from __future__ import annotations

import base64
import copy

from tests.serving.cases import BAD, GOOD, Case
from tests.serving.conftest import load_event

TEMPLATE = load_event("http_api_predict")
# Readiness depends on the process, and bodies over 1 MiB only slow the comparison down.
EQUIVALENCE = [c for c in GOOD + BAD if c.id not in {"v2-ready", "v2-model-ready"} and len(c.body) < 1 << 20]


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
