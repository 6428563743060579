"""The contracts between parts: the model artifact (metadata.json's fields, the datatype names, the
example request) and the server's wire names (ports, health paths, metric names, route labels).

`model/` writes the artifact through this module, `serving/` reads it through it, and `infra/`
(the smoke test, `make compare`) reads the example through it, so writer and readers cannot
drift apart. Likewise the server answers and counts under the wire names below, and `infra/`'s
probes, PrometheusRule, canary analysis and port-forwards read the same constants. It imports
nothing but the standard library: the Lambda zip carries it, and `infra/` imports it (infra's
virtualenv has the repository root on its path) without TensorFlow or numpy.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

METADATA_FILE = "metadata.json"
# Beside metadata.json: the distributions of the training rows (else the evaluation or generated ones)
# and of the model's answers to them, which a drift report holds production's captured records against
# (model/reference.py writes it, infra/drift/ reads it).
REFERENCE_FILE = "reference.json"
REFERENCE_SCHEMA = "twinserve.reference/1"
MAX_FEATURES_PER_TENSOR = 32  # a row holding more values than this is one feature, all of them
MAX_CATEGORIES = 50  # strings or integers of at most this many kinds are categories, not numbers
# How a feature reads a tensor's values: as numbers, as string lengths, as categories (text), or each
# row's top class.
READS_VALUE, READS_LENGTH, READS_CATEGORY, READS_TOP_CLASS = "value", "length", "category", "top_class"
SIGNATURE = "serving_default"
RTOL, ATOL = 1e-3, 1e-5  # how close two runtimes' float answers must be (LiteRT against TensorFlow)

# The server's wire names.
HTTP_PORT = 8080  # PORT's default: the model's routes
METRICS_PORT = 8082  # TWINSERVE_METRICS_PORT's default: /metrics alone, never exposed with the model
LIVE_PATH, READY_PATH = "/v2/health/live", "/v2/health/ready"
REQUESTS_METRIC = "rest_server_requests"  # a counter (samples: <name>_total), by model, route, status_code
LATENCY_METRIC = "rest_server_request_duration_seconds"  # a histogram, same labels
BATCH_METRIC = "model_infer_batch_size"  # a histogram of rows per inference call, by model
V2_INFER_ROUTE, TF_PREDICT_ROUTE = "v2_infer", "tf_predict"  # the `route` labels of inference
INFERENCE_ROUTES = (V2_INFER_ROUTE, TF_PREDICT_ROUTE)
CAPTURE_METRIC = "twinserve_capture_records"  # a counter by model and outcome (written, dropped, failed)
CAPTURE_SCHEMA = "twinserve.capture/1"  # the `schema` of every payload capture record (serving/capture.py)
TRACKS = ("stable", "canary", "shadow")  # TWINSERVE_TRACK: which side of a rollout a server is on


class ContractError(ValueError):
    """metadata.json breaks the contract; the message names the file and the field."""


@dataclass(frozen=True)
class Datatype:
    """One datatype under each name it goes by."""

    v2: str  # Open Inference Protocol V2 (and metadata.json)
    numpy: str  # numpy's dtype name; BYTES arrays hold Python objects
    tensorflow: str  # tf.DType.name
    tf_serving: str  # TF Serving's DataType enum, in its metadata answers


DATATYPES: tuple[Datatype, ...] = (
    Datatype("BOOL", "bool", "bool", "DT_BOOL"),
    Datatype("UINT8", "uint8", "uint8", "DT_UINT8"),
    Datatype("UINT16", "uint16", "uint16", "DT_UINT16"),
    Datatype("UINT32", "uint32", "uint32", "DT_UINT32"),
    Datatype("UINT64", "uint64", "uint64", "DT_UINT64"),
    Datatype("INT8", "int8", "int8", "DT_INT8"),
    Datatype("INT16", "int16", "int16", "DT_INT16"),
    Datatype("INT32", "int32", "int32", "DT_INT32"),
    Datatype("INT64", "int64", "int64", "DT_INT64"),
    Datatype("FP16", "float16", "float16", "DT_HALF"),
    Datatype("FP32", "float32", "float32", "DT_FLOAT"),
    Datatype("FP64", "float64", "float64", "DT_DOUBLE"),
    Datatype("BYTES", "object", "string", "DT_STRING"),
)
BY_V2 = {d.v2: d for d in DATATYPES}
BY_TENSORFLOW = {d.tensorflow: d for d in DATATYPES}


@dataclass(frozen=True)
class TensorSpec:
    """One named tensor of the signature: V2 datatype, shape with -1 for unknown dimensions."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclass(frozen=True)
class Tensor:
    """One V2 tensor with its values, flattened in row-major order as the protocol sends them."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: tuple[Any, ...]

    def to_json(self) -> dict[str, Any]:
        return {**TensorSpec(self.name, self.datatype, self.shape).to_json(), "data": list(self.data)}


@dataclass(frozen=True)
class Example:
    """A small request valid for the signature and the answer TensorFlow gave it at export."""

    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]

    def v2_request(self) -> dict[str, Any]:
        """The body of `POST /v2/models/<name>/infer`."""
        return {"inputs": [t.to_json() for t in self.inputs]}

    def rows(self) -> int:
        return self.inputs[0].shape[0]

    def mismatch(self, answer: Any) -> str:
        """How a V2 answer differs from the expected one (names, datatypes, shapes, values within
        RTOL/ATOL), or "" when it matches."""
        outputs = answer.get("outputs") if isinstance(answer, dict) else None
        if not isinstance(outputs, list):
            return "the answer has no outputs list"
        got = {o.get("name"): o for o in outputs if isinstance(o, dict)}
        for want in self.outputs:
            if want.name not in got:
                return f"no output {want.name!r} (got {sorted(map(str, got))})"
            have = got[want.name]
            if (have.get("datatype"), tuple(have.get("shape", ()))) != (want.datatype, want.shape):
                return (
                    f"output {want.name!r} is {have.get('datatype')} {have.get('shape')}, "
                    f"expected {want.datatype} {list(want.shape)}"
                )
            data = have.get("data", [])
            if len(data) != len(want.data):
                return f"output {want.name!r} has {len(data)} values, expected {len(want.data)}"
            for index, (value, expected) in enumerate(zip(data, want.data, strict=True)):
                if not close(value, expected):
                    return f"output {want.name!r}[{index}] is {value!r}, expected {expected!r}"
        return ""

    def to_json(self) -> dict[str, Any]:
        return {"inputs": [t.to_json() for t in self.inputs], "outputs": [t.to_json() for t in self.outputs]}


def close(value: Any, expected: Any) -> bool:
    if isinstance(expected, float) and isinstance(value, int | float) and not isinstance(value, bool):
        return math.isclose(value, expected, rel_tol=RTOL, abs_tol=ATOL)
    return value == expected


@dataclass(frozen=True)
class Metadata:
    """metadata.json. The fields every reader relies on are typed; `record` keeps what people read
    (metrics, provenance, file digests, the LiteRT conversion) as it was written."""

    name: str
    version: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    example: Example
    signature_name: str = SIGNATURE
    labels: tuple[str, ...] = ()
    record: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.record,
            "name": self.name,
            "version": self.version,
            "signature_name": self.signature_name,
            "inputs": [t.to_json() for t in self.inputs],
            "outputs": [t.to_json() for t in self.outputs],
            "labels": list(self.labels),
            "example": self.example.to_json(),
        }

    def dumps(self) -> str:
        """Sorted keys and a trailing newline: the same metadata gives the same bytes."""
        return json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"

    def write(self, directory: Path) -> Path:
        path = directory / METADATA_FILE
        path.write_text(self.dumps())
        return path

    @classmethod
    def from_json(cls, raw: Any, where: str) -> Metadata:
        if not isinstance(raw, dict):
            raise ContractError(f"{where}: expected a JSON object")
        reader = _Reader(raw, where)
        inputs = reader.specs("inputs")
        outputs = reader.specs("outputs")
        example = reader.example(inputs, outputs)
        typed = {"name", "version", "signature_name", "inputs", "outputs", "labels", "example"}
        return cls(
            name=reader.text("name"),
            version=reader.version(),
            inputs=inputs,
            outputs=outputs,
            example=example,
            signature_name=reader.text("signature_name", SIGNATURE),
            labels=reader.labels(),
            record={k: v for k, v in raw.items() if k not in typed},
        )

    @classmethod
    def read(cls, path: Path) -> Metadata:
        """metadata.json from a version directory or the file itself; every problem is a ContractError."""
        file = path / METADATA_FILE if path.is_dir() else path
        try:
            raw = json.loads(file.read_text())
        except FileNotFoundError:
            raise ContractError(f"metadata not found: {file}") from None
        except (OSError, ValueError) as error:
            raise ContractError(f"{file} is not readable JSON: {error}") from None
        return cls.from_json(raw, str(file))


class _Reader:
    """Reads one metadata.json document, naming the field in every refusal."""

    def __init__(self, raw: dict[str, Any], where: str) -> None:
        self.raw, self.where = raw, where

    def fail(self, field_name: str, problem: str) -> ContractError:
        return ContractError(f"{self.where}: {field_name} {problem}")

    def text(self, key: str, default: str | None = None) -> str:
        value = self.raw.get(key, default)
        if not isinstance(value, str) or not value:
            raise self.fail(key, "is missing or not a non-empty string")
        return value

    def version(self) -> int:
        value = self.raw.get("version")
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise self.fail("version", f"must be a positive integer, got {value!r}")
        return value

    def labels(self) -> tuple[str, ...]:
        value = self.raw.get("labels", [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail("labels", "must be a list of strings")
        return tuple(value)

    def _tensor_head(self, raw: Any, where: str) -> tuple[str, str, tuple[int, ...]]:
        if not isinstance(raw, dict):
            raise self.fail(where, "must be an object with name, datatype and shape")
        name, datatype, shape = raw.get("name"), raw.get("datatype"), raw.get("shape")
        if not isinstance(name, str) or not name:
            raise self.fail(where, "has no name")
        if datatype not in BY_V2:
            known = sorted(BY_V2)
            raise self.fail(f"{where} ({name})", f"has datatype {datatype!r}; expected one of {known}")
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= -1 for d in shape):
            raise self.fail(f"{where} ({name})", f"has shape {shape!r}; expected a list of sizes, -1 for any")
        return name, datatype, tuple(shape)

    def specs(self, key: str) -> tuple[TensorSpec, ...]:
        value = self.raw.get(key)
        if not isinstance(value, list) or not value:
            raise self.fail(key, "is missing or empty")
        specs = tuple(TensorSpec(*self._tensor_head(t, f"{key}[{i}]")) for i, t in enumerate(value))
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise self.fail(key, f"repeats a name: {names}")
        return specs

    def _tensors(self, raw: Any, where: str, specs: tuple[TensorSpec, ...]) -> tuple[Tensor, ...]:
        if not isinstance(raw, list):
            raise self.fail(where, "must be a list of tensors")
        tensors = []
        for i, item in enumerate(raw):
            name, datatype, shape = self._tensor_head(item, f"{where}[{i}]")
            data = item.get("data")
            size = math.prod(shape)
            if not isinstance(data, list) or len(data) != size or any(d < 0 for d in shape):
                raise self.fail(f"{where}[{i}] ({name})", f"must hold {list(shape)} = {size} values")
            tensors.append(Tensor(name, datatype, shape, tuple(data)))
        expected = {(s.name, s.datatype) for s in specs}
        if {(t.name, t.datatype) for t in tensors} != expected:
            raise self.fail(where, f"does not match the signature's {sorted(expected)}")
        return tuple(tensors)

    def example(self, inputs: tuple[TensorSpec, ...], outputs: tuple[TensorSpec, ...]) -> Example:
        raw = self.raw.get("example")
        if not isinstance(raw, dict):
            raise self.fail("example", "is missing: export the model again (`make model`)")
        example = Example(
            self._tensors(raw.get("inputs"), "example.inputs", inputs),
            self._tensors(raw.get("outputs"), "example.outputs", outputs),
        )
        if len({t.shape[0] for t in example.inputs}) != 1:
            raise self.fail("example.inputs", "must all have the same number of rows")
        return example


def feature_values(feature: dict[str, Any], tensor: dict[str, Any]) -> list[Any]:
    """A reference feature's values in one V2 tensor (flat `data`, `shape` with rows first): one value of
    each row, every value, every string's length, or each row's top class name."""
    data, shape = tensor.get("data") or [], tensor.get("shape") or [0]
    rows = shape[0] if shape else 0
    width = math.prod(shape[1:]) if len(shape) > 1 else 1
    if rows <= 0 or len(data) != rows * width:
        return []
    reads, index = feature["reads"], feature.get("index")
    if reads == READS_TOP_CLASS:
        return _top_classes(feature["classes"], data, rows, width)
    if index is None:
        values = list(data)
    elif index < width:
        values = [data[row * width + index] for row in range(rows)]
    else:
        return []
    if reads == READS_LENGTH:
        return [len(v.encode()) if isinstance(v, str) else len(str(v)) for v in values]
    if reads == READS_CATEGORY:
        return [_category_text(v) for v in values]
    return values


def _top_classes(classes: list[str], data: list[Any], rows: int, width: int) -> list[str]:
    if width != len(classes):
        return []
    tops = []
    for row in range(rows):
        values = data[row * width : (row + 1) * width]
        tops.append(classes[max(range(width), key=values.__getitem__)])
    return tops


def _category_text(value: Any) -> str:
    """A captured value as the reference names its category: text as is, a number as written (ints
    without a fraction, booleans as True/False like numpy's str())."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value if isinstance(value, str) else json.dumps(value)
