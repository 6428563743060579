"""AWS Lambda adapter: API Gateway HTTP API (payload 2.0) and Function URL events through the route table.

The model is loaded at import, in Lambda's init phase, and reused by every warm
invocation. Nothing here imports TensorFlow unless TWINSERVE_RUNTIME asks for it.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from typing import Any

from serving import capture, lambda_shadow
from serving.app import build_dataplane
from serving.emf import PREDICTIONS, emf_line
from serving.errors import BadRequest
from serving.prediction_mix import PredictionMix
from serving.routes import Request, Response, error_response, handle
from serving.settings import Settings

TEXT_TYPES = ("application/json",)
logger = logging.getLogger("twinserve")


def request_from_event(event: dict[str, Any]) -> Request:
    """Payload 2.0: method in requestContext.http, lower-cased headers, maybe a base64 body."""
    try:
        method = event["requestContext"]["http"]["method"]
    except (KeyError, TypeError):
        raise BadRequest(
            "unsupported event: expected an HTTP API (payload 2.0) or Function URL event"
        ) from None
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    body = event.get("body") or ""
    try:
        raw = base64.b64decode(body, validate=True) if event.get("isBase64Encoded") else body.encode()
    except (binascii.Error, ValueError):
        raise BadRequest("body is marked base64 but is not valid base64") from None
    return Request(method.upper(), event.get("rawPath") or "/", headers, raw)


def response_to_lambda(response: Response) -> dict[str, Any]:
    headers = dict(response.headers)
    if headers.get("content-type") in TEXT_TYPES:
        return {
            "statusCode": response.status,
            "headers": headers,
            "body": response.body.decode(),
            "isBase64Encoded": False,
        }
    encoded = base64.b64encode(response.body).decode()
    return {"statusCode": response.status, "headers": headers, "body": encoded, "isBase64Encoded": True}


SETTINGS = Settings.from_env()
PLANE = build_dataplane(SETTINGS)
RECORDER = capture.recorder_for(SETTINGS.capture, PLANE.spec, "lambda", SETTINGS.track)
MIRROR = lambda_shadow.mirror_for(PLANE.spec, SETTINGS.shadow_function, SETTINGS.shadow_sample_rate)
# The function and version answering now: one invocation at a time per environment.
INVOCATION: dict[str, str] = {}


def _count_prediction(output: str, column: str, label: str, rows: int) -> None:
    """The prediction mix as embedded metrics, by version and class (its column), for the rollout to
    compare a canary's with the stable version's: one line per class an answer's rows topped."""
    print(emf_line({**INVOCATION, "Class": column}, {PREDICTIONS: rows}), flush=True)


MIX = PredictionMix(PLANE.spec, _count_prediction)


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    started = time.perf_counter()
    if isinstance(event, dict) and lambda_shadow.EVENT_KEY in event:  # from the stable version's mirror
        return lambda_shadow.judge(PLANE, event, context, SETTINGS.max_body_bytes)
    try:
        request = request_from_event(event)
    except BadRequest as error:
        return response_to_lambda(error_response(error))
    response = handle(PLANE, request, SETTINGS.max_body_bytes)
    if RECORDER is not None and RECORDER.sampled(response.route):
        _capture(RECORDER, response, request, context, time.perf_counter() - started)
    if MIX.counts_anything and response.status == 200 and response.outputs is not None:
        INVOCATION.update(Function=_name(context), Version=str(getattr(context, "function_version", "")))
        MIX.add(response.outputs)
    if MIRROR is not None and MIRROR.wants(response):
        MIRROR.offer(response, _name(context))
    return response_to_lambda(response)


def _name(context: object) -> str:
    return str(getattr(context, "function_name", ""))


def _capture(
    recorder: capture.Recorder, response: Response, request: Request, context: object, seconds: float
) -> None:
    """Written before returning, since Lambda may freeze the environment once the handler returns;
    a record that cannot be written is logged, and the client still gets its answer."""
    request_id = (
        request.headers.get("x-request-id")
        or getattr(context, "aws_request_id", None)
        or capture.new_request_id()
    )
    try:
        exchange = recorder.bounded(capture.exchange(response, request_id, seconds))
        recorder.emit(recorder.record(exchange))
    except Exception:
        logger.exception("payload capture failed for request %s", request_id)
