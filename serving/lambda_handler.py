"""AWS Lambda adapter: API Gateway HTTP API (payload 2.0) and Function URL events through the route table.

The model is loaded at import, in Lambda's init phase, and reused by every warm
invocation. Nothing here imports TensorFlow unless TWINSERVE_RUNTIME asks for it.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from serving.app import build_dataplane
from serving.errors import BadRequest
from serving.routes import Request, Response, error_response, handle
from serving.settings import Settings

TEXT_TYPES = ("application/json",)


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


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    try:
        request = request_from_event(event)
    except BadRequest as error:
        return response_to_lambda(error_response(error))
    return response_to_lambda(handle(PLANE, request, SETTINGS.max_body_bytes))
