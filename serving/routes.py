"""The one route table both adapters call: (method, path, headers, body) in, (status, headers, body) out.

No web framework and nothing of Lambda here, so the HTTP server and the Lambda
handler answer the same request with the same bytes by construction.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import numpy as np

from serving import contract, tfserving, v2
from serving.dataplane import DataPlane
from serving.errors import MethodNotAllowed, NotFound, PayloadTooLarge, ServingError, UnsupportedMediaType
from serving.json_tensors import parse_predict
from serving.jsonio import collector_paused, dumps
from serving.tensors import Inputs, rows_of

logger = logging.getLogger("twinserve")
SERVER_NAME = "twinserve"
SERVER_VERSION = "0.1.0"
JSON = "application/json"
ACCEPTED_TYPES = ("application/json", "application/x-www-form-urlencoded", "application/octet-stream", "")
_MODEL = r"/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+))?"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes = b""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = (("content-type", JSON),)
    route: str = "unmatched"  # a label for metrics and logs, never sent
    rows: int = field(default=0, compare=False)
    # What payload capture records (serving/capture.py), never sent: the decoded inputs and the model's
    # outputs of an answered inference, the message of a refused request.
    inputs: Inputs | None = field(default=None, compare=False, repr=False)
    outputs: Mapping[str, np.ndarray] | None = field(default=None, compare=False, repr=False)
    error: str | None = field(default=None, compare=False)

    def labelled(self, route: str) -> Response:
        """This response under the route that answered it: `dataclasses.replace` costs twice this, and
        every request pays it."""
        return Response(
            self.status, self.body, self.headers, route, self.rows, self.inputs, self.outputs, self.error
        )

    @property
    def answered_inference(self) -> bool:
        """An inference answered with its tensors: what a shadow is handed (both runtimes' mirrors)."""
        answered = self.status == 200 and self.route in contract.INFERENCE_ROUTES
        return answered and self.inputs is not None and self.outputs is not None


def json_response(status: int, payload: Any, rows: int = 0) -> Response:
    return Response(status, dumps(payload), rows=rows)


def error_response(error: ServingError) -> Response:
    response = replace(json_response(error.status, {"error": str(error)}), error=str(error))
    if isinstance(error, MethodNotAllowed) and len(error.args) > 1:
        return replace(response, headers=(*response.headers, ("allow", error.args[1])))
    return response


Handler = Callable[[DataPlane, Request, Mapping[str, str]], Response]


def _live(plane: DataPlane, request: Request, params: Mapping[str, str]) -> Response:
    return json_response(200, {"live": True})


def _ready(plane: DataPlane, request: Request, params: Mapping[str, str]) -> Response:
    return json_response(200 if plane.ready else 503, {"ready": plane.ready})


def _server_metadata(plane: DataPlane, request: Request, params: Mapping[str, str]) -> Response:
    payload = {"name": SERVER_NAME, "version": SERVER_VERSION, "extensions": ["binary_tensor_data"]}
    return json_response(200, payload)


def _v2_model(plane: DataPlane, request: Request, params: Mapping[str, str]) -> Response:
    spec = plane.check_model(params["name"], params["version"])
    return json_response(200, v2.model_metadata(spec, plane.platform))


def _v2_model_ready(plane: DataPlane, request: Request, params: Mapping[str, str]) -> Response:
    spec = plane.check_model(params["name"], params["version"])
    return json_response(200 if plane.ready else 503, {"name": spec.name, "ready": plane.ready})


def _v2_infer(plane: DataPlane, request: Request, params: Mapping[str, str]) -> Response:
    spec = plane.check_model(params["name"], params["version"])
    with collector_paused(len(request.body)):
        decoded = v2.decode_infer(
            request.body, request.headers.get(v2.BINARY_HEADER), spec, plane.json_items_budget
        )
    outputs = plane.predict(decoded.inputs)
    body, header_length = v2.encode_infer(spec, decoded, outputs)
    if header_length is None:
        return Response(200, body, rows=decoded.rows, inputs=decoded.inputs, outputs=outputs)
    headers = (
        ("content-type", "application/octet-stream"),
        ("inference-header-content-length", str(header_length)),
    )
    return Response(200, body, headers, rows=decoded.rows, inputs=decoded.inputs, outputs=outputs)


def _tf_status(plane: DataPlane, request: Request, params: Mapping[str, str]) -> Response:
    spec = plane.check_model(params["name"], params["version"])
    return json_response(200, tfserving.version_status(spec))


def _tf_metadata(plane: DataPlane, request: Request, params: Mapping[str, str]) -> Response:
    spec = plane.check_model(params["name"], params["version"])
    return json_response(200, tfserving.metadata(spec))


def _tf_predict(plane: DataPlane, request: Request, params: Mapping[str, str]) -> Response:
    spec = plane.check_model(params["name"], params["version"])
    with collector_paused(len(request.body)):  # the parsed lists are freed as soon as the arrays are built
        inputs, row_format = tfserving.decode_predict(
            parse_predict(request.body, max_items=plane.json_items_budget), spec
        )
    outputs = plane.predict(inputs)
    body = dumps(tfserving.encode_predict(outputs, row_format))
    return Response(200, body, rows=rows_of(inputs), inputs=inputs, outputs=outputs)


# (method, path pattern, handler, the route's label in metrics and logs)
ROUTES: tuple[tuple[str, re.Pattern[str], Handler, str], ...] = tuple(
    (method, re.compile(f"^{pattern}$"), handler, label)
    for method, pattern, handler, label in (
        ("GET", "/v2", _server_metadata, "server_metadata"),
        ("GET", contract.LIVE_PATH, _live, "live"),
        ("GET", contract.READY_PATH, _ready, "ready"),
        ("GET", f"/v2{_MODEL}", _v2_model, "v2_model"),
        ("GET", f"/v2{_MODEL}/ready", _v2_model_ready, "v2_model_ready"),
        ("POST", f"/v2{_MODEL}/infer", _v2_infer, contract.V2_INFER_ROUTE),
        ("GET", f"/v1{_MODEL}", _tf_status, "tf_status"),
        ("GET", f"/v1{_MODEL}/metadata", _tf_metadata, "tf_metadata"),
        ("POST", f"/v1{_MODEL}:predict", _tf_predict, contract.TF_PREDICT_ROUTE),
    )
)


@functools.lru_cache(maxsize=256)  # a server sees a handful of paths; a client's odd ones age out
def _match(method: str, path: str) -> tuple[Handler, str, Mapping[str, str]]:
    """The route for a request (404 and 405 are raised, so never kept): matched once per method and path."""
    allowed = []
    for route_method, pattern, handler, label in ROUTES:
        found = pattern.match(path)
        if found is None:
            continue
        if route_method == method:
            return handler, label, MappingProxyType(found.groupdict())
        allowed.append(route_method)
    if allowed:
        raise MethodNotAllowed(
            f"method {method} not allowed on {path}; use {', '.join(allowed)}", ", ".join(allowed)
        )
    raise NotFound(f"no route for {method} {path}")


def route_label(method: str, path: str) -> str:
    """The route a request was for, as metrics and captured records name it, when it was refused
    before the route table saw it (shed, too large, too slow): "unmatched" when no route matches."""
    for route_method, pattern, _, label in ROUTES:
        if route_method == method and pattern.match(path):
            return label
    return "unmatched"


def body_too_large(max_body_bytes: int) -> PayloadTooLarge:
    """The one refusal of an oversized body, also raised by the HTTP adapter as it streams one in."""
    return PayloadTooLarge(f"request body exceeds the limit of {max_body_bytes} bytes")


def _check_body(request: Request, max_body_bytes: int) -> None:
    if len(request.body) > max_body_bytes:
        raise body_too_large(max_body_bytes)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method == "POST" and content_type not in ACCEPTED_TYPES and not content_type.endswith("+json"):
        raise UnsupportedMediaType(f"content type {content_type!r} is not supported; send {JSON}")


def handle(plane: DataPlane, request: Request, max_body_bytes: int) -> Response:
    """Route, validate, delegate, encode; every ServingError becomes `{"error": msg}` with its status."""
    route = "unmatched"
    try:
        handler, route, params = _match(request.method, request.path)
        _check_body(request, max_body_bytes)
        return handler(plane, request, params).labelled(route)
    except ServingError as error:
        return error_response(error).labelled(route)
    except Exception:
        logger.exception("unexpected error on %s %s", request.method, request.path)
        return error_response(ServingError("internal error; see the server log")).labelled(route)
