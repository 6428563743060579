"""A table of requests, good and bad, with what a client must see; shared by the HTTP and Lambda tests."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

ROW = [5.1, 3.5, 1.4, 0.2]
JSON = {"content-type": "application/json"}


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    path: str
    body: bytes = b""
    status: int = 200
    error: str | None = None  # a fragment the {"error": ...} message must contain
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON))


def body(payload: object) -> bytes:
    return json.dumps(payload).encode()


def v2_input(data: object, shape: object = (1, 4), datatype: str = "FP32", name: str = "features") -> bytes:
    return body({"inputs": [{"name": name, "shape": list(shape) if isinstance(shape, tuple) else shape,
                             "datatype": datatype, "data": data}]})  # fmt: skip


PREDICT = "/v1/models/iris:predict"
INFER = "/v2/models/iris/infer"

GOOD = [
    Case("tf-row", "POST", PREDICT, body({"instances": [ROW, ROW]})),
    Case("tf-row-named", "POST", PREDICT, body({"instances": [{"features": ROW}]})),
    Case("tf-columnar", "POST", PREDICT, body({"inputs": [ROW]})),
    Case("tf-columnar-named", "POST", PREDICT, body({"inputs": {"features": [ROW]}})),
    Case("tf-version", "POST", "/v1/models/iris/versions/1:predict", body({"instances": [ROW]})),
    Case("tf-signature", "POST", PREDICT, body({"signature_name": "serving_default", "instances": [ROW]})),
    Case(
        "tf-curl-form-type",
        "POST",
        PREDICT,
        body({"instances": [ROW]}),
        headers={"content-type": "application/x-www-form-urlencoded"},
    ),
    Case("tf-status", "GET", "/v1/models/iris"),
    Case("tf-metadata", "GET", "/v1/models/iris/versions/1/metadata"),
    Case("v2-server", "GET", "/v2"),
    Case("v2-live", "GET", "/v2/health/live"),
    Case("v2-ready", "GET", "/v2/health/ready"),
    Case("v2-model", "GET", "/v2/models/iris"),
    Case("v2-model-version", "GET", "/v2/models/iris/versions/1"),
    Case("v2-model-ready", "GET", "/v2/models/iris/ready"),
    Case("v2-infer-flat", "POST", INFER, v2_input(ROW)),
    Case("v2-infer-nested", "POST", INFER, v2_input([ROW, ROW], shape=(2, 4))),
    Case("v2-infer-no-content-type", "POST", INFER, v2_input(ROW), headers={}),
]

BAD = [
    Case("malformed-json", "POST", PREDICT, b'{"instances": [', 400, "not valid JSON"),
    Case("empty-body", "POST", PREDICT, b"", 400, "request body is empty"),
    Case("not-utf8", "POST", PREDICT, b"\xff\xfe", 400, "not valid UTF-8"),
    Case("json-array", "POST", PREDICT, b"[1, 2]", 400, "must be a JSON object"),
    Case(
        "text-plain",
        "POST",
        PREDICT,
        body({"instances": [ROW]}),
        415,
        "content type 'text/plain'",
        headers={"content-type": "text/plain"},
    ),
    Case("no-instances", "POST", PREDICT, body({}), 400, "send exactly one of 'instances'"),
    Case("both-formats", "POST", PREDICT, body({"instances": [ROW], "inputs": [ROW]}), 400, "exactly one of"),
    Case(
        "unknown-field", "POST", PREDICT, body({"instances": [ROW], "foo": 1}), 400, "unknown fields ['foo']"
    ),
    Case(
        "wrong-input-name",
        "POST",
        PREDICT,
        body({"instances": [{"x": ROW}]}),
        400,
        "expected the key ['features']",
    ),
    Case(
        "wrong-width", "POST", PREDICT, body({"instances": [[1, 2, 3]]}), 400, "shape [1, 3] does not match"
    ),
    Case("ragged", "POST", PREDICT, body({"instances": [ROW, [1, 2]]}), 400, "ragged"),
    # V2 data nested unevenly, with as many values as the shape needs: refused, not flattened.
    Case("v2-ragged-data", "POST", INFER, v2_input([[5.1], 3.5, 1.4, 0.2]), 400, "ragged"),
    Case("strings", "POST", PREDICT, body({"instances": [["a", "b", "c", "d"]]}), 400, "got strings"),
    Case("booleans", "POST", PREDICT, body({"instances": [[True, False, True, True]]}), 400, "got booleans"),
    Case(
        "a-boolean-among-numbers",
        "POST",
        PREDICT,
        body({"instances": [[5.1, 3.5, 1.4, True]]}),
        400,
        "expected numbers for FP32, got true or false among them",
    ),
    Case("v2-a-boolean-among-numbers", "POST", INFER, v2_input([5.1, False, 1.4, 0.2]), 400, "true or false"),
    Case("nan", "POST", PREDICT, b'{"instances": [[NaN, 1, 2, 3]]}', 400, "NaN is not allowed"),
    Case(
        "infinity", "POST", PREDICT, b'{"instances": [[Infinity, 1, 2, 3]]}', 400, "Infinity is not allowed"
    ),
    Case(
        "float32-overflow",
        "POST",
        PREDICT,
        body({"instances": [[1e300, 1, 2]]}),
        400,
        "finite float32 numbers",
    ),
    Case(
        "huge-int", "POST", PREDICT, b'{"instances": [[1' + b"0" * 40 + b", 1, 2, 3]]}", 400, "out-of-range"
    ),
    Case(
        "number-too-long",
        "POST",
        PREDICT,
        b'{"instances": [[1' + b"1" * 5000 + b", 1, 2, 3]]}",
        400,
        "request body holds an integer longer than 4300 digits",
    ),
    Case(
        "v2-number-too-long",
        "POST",
        INFER,
        v2_input(ROW).replace(b"5.1", b"5" * 5000),
        400,
        "request body holds an integer longer than 4300 digits",
    ),
    Case("empty-batch", "POST", PREDICT, body({"instances": []}), 400, "does not match"),
    Case("empty-columnar", "POST", PREDICT, body({"inputs": {"features": []}}), 400, "does not match"),
    Case(
        "deep-nesting", "POST", PREDICT, b'{"instances": ' + b"[" * 5_000 + b"]" * 5_000 + b"}", 400, "nested"
    ),
    Case(
        "too-many-json-items",
        "POST",
        PREDICT,
        b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        413,
        "JSON arrays, objects and values; the model takes at most",
    ),
    Case(
        "too-many-rows", "POST", PREDICT, body({"instances": [ROW] * 1025}), 413, "exceeds the limit of 1024"
    ),
    Case("oversized-body", "POST", PREDICT, b"[" * (6 * 1024 * 1024 + 1), 413, "exceeds the limit"),
    Case("unknown-model", "POST", "/v1/models/nope:predict", body({"instances": [ROW]}), 404, "model 'nope'"),
    Case("unknown-version", "GET", "/v1/models/iris/versions/9", b"", 404, "version '9'"),
    Case(
        "bad-signature",
        "POST",
        PREDICT,
        body({"signature_name": "x", "instances": [ROW]}),
        400,
        "'x' not found",
    ),
    Case("wrong-method", "GET", PREDICT, b"", 405, "method GET not allowed"),
    Case("wrong-method-v2", "PUT", "/v2/health/live", b"", 405, "use GET"),
    Case("unknown-path", "GET", "/nope", b"", 404, "no route for GET /nope"),
    Case("v2-unknown-model", "GET", "/v2/models/nope/ready", b"", 404, "model 'nope'"),
    Case("v2-no-inputs", "POST", INFER, body({"id": "x"}), 400, "'inputs' must be a list"),
    Case(
        "v2-wrong-name", "POST", INFER, v2_input(ROW, name="x"), 400, "unknown input 'x'; the model's inputs"
    ),
    Case("v2-wrong-datatype", "POST", INFER, v2_input(ROW, datatype="INT64"), 400, "datatype 'INT64'"),
    Case("v2-shape-mismatch", "POST", INFER, v2_input(ROW, shape=(2, 4)), 400, "needs 8 values, got 4"),
    Case("v2-bad-shape", "POST", INFER, v2_input(ROW, shape="1x4"), 400, "shape must be a list"),
    Case("v2-wrong-width", "POST", INFER, v2_input([1, 2, 3], shape=(1, 3)), 400, "does not match"),
    Case(
        "v2-missing-data",
        "POST",
        INFER,
        body({"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32"}]}),
        400,
        "missing 'data'",
    ),
    Case(
        "v2-unknown-output",
        "POST",
        INFER,
        body({"inputs": json.loads(v2_input(ROW))["inputs"], "outputs": [{"name": "y"}]}),
        400,
        "unknown output 'y'",
    ),
    Case(
        "v2-bad-binary-header",
        "POST",
        INFER,
        v2_input(ROW),
        400,
        "Inference-Header-Content-Length",
        headers={"inference-header-content-length": "99999"},
    ),
    Case(
        "v2-id-not-string",
        "POST",
        INFER,
        body({"id": 5, "inputs": json.loads(v2_input(ROW))["inputs"]}),
        400,
        "'id' must be a string",
    ),
]
