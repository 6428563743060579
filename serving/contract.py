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
# Beside metadata.json: a small sample (labelled when the export had evaluation data) and TensorFlow's
# answers to it, replayed through each deployed runtime by every smoke test (model/golden.py writes it,
# infra/delivery/smoke.py replays it). Outside the artifact it keeps metadata's name with "golden" for
# "metadata" (dist/model-golden.json beside dist/model-metadata.json).
GOLDEN_FILE = "golden.json"
GOLDEN_SCHEMA = "twinserve.golden/1"
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
# A counter by model, output, class (its column) and label (its name): each answered row's top class in
# the model's first output that
# scores at most MIX_MAX_CLASSES classes (floats, [-1, classes]); the canary analysis holds the new
# model's mix against the stable model's (serving/prediction_mix.py counts, infra/delivery/ judges).
PREDICTIONS_METRIC = "model_predictions"
MIX_MAX_CLASSES = 100
# Shadow traffic (serving/shadow.py), counted on the stable servers that mirror: requests by outcome
# (mirrored, compared, differed, dropped, paused, skipped, failed), a classifier's rows by whether the
# shadow's top class agreed, and the shadow's latency.
SHADOW_REQUESTS_METRIC = "twinserve_shadow_requests"
SHADOW_ROWS_METRIC = "twinserve_shadow_rows"
SHADOW_LATENCY_METRIC = "twinserve_shadow_request_duration_seconds"
SHADOW_HEADER = "x-twinserve-shadow"  # on mirrored requests: a shadow never mirrors them again
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


def golden_beside(metadata: Path) -> Path:
    """Where a golden set sits beside a metadata.json: golden.json in an artifact, model-golden.json
    beside dist/model-metadata.json."""
    return metadata.with_name(metadata.name.replace("metadata", "golden"))


@dataclass(frozen=True)
class GoldenSet:
    """A few rows and TensorFlow's answers to them at export, in requests small enough for any runtime,
    with each row's true class when the export had labelled data. A runtime serves the model as it was
    exported when every answer matches within RTOL/ATOL; with labels, its accuracy on them must also
    reach the gate's threshold (or TensorFlow's own on these rows, when a small sample scored lower)."""

    requests: tuple[Example, ...]
    labels: tuple[int, ...] = ()  # one per row across the requests, or none
    scored_output: str | None = None  # the output whose top class the labels grade
    accuracy: float | None = None  # TensorFlow's on these rows
    min_accuracy: float | None = None  # the evaluation gate's threshold
    source: str = "generated"  # where the rows came from: "evaluation" data or "generated" for the signature

    @property
    def rows(self) -> int:
        return sum(request.rows() for request in self.requests)

    @property
    def required_accuracy(self) -> float | None:
        if not self.labels or self.accuracy is None:
            return None
        return self.accuracy if self.min_accuracy is None else min(self.accuracy, self.min_accuracy)

    def accuracy_of(self, answers: list[Any]) -> float | None:
        """The share of labelled rows whose top class in the scored output is their label."""
        if not self.labels or self.scored_output is None:
            return None
        tops: list[int] = []
        for request, answer in zip(self.requests, answers, strict=True):
            got = {o.get("name"): o for o in answer.get("outputs", []) if isinstance(o, dict)}
            data, rows = got[self.scored_output].get("data", []), request.rows()
            tops += top_indices(data, rows, len(data) // rows if rows else 0)
        return sum(top == label for top, label in zip(tops, self.labels, strict=True)) / len(self.labels)

    def judge(self, answers: list[Any]) -> str:
        """How the runtime's answers (one per request) fall short, or "" when they do not."""
        for index, (request, answer) in enumerate(zip(self.requests, answers, strict=True)):
            wrong = request.mismatch(answer)
            if wrong:
                return f"request {index + 1} of {len(self.requests)} got a different answer: {wrong}"
        required, served = self.required_accuracy, self.accuracy_of(answers)
        if required is not None and served is not None and served < required:
            return (
                f"accuracy {served:.4f} on its {len(self.labels)} labelled rows, below the {required:.4f} "
                "required"
            )
        return ""

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": GOLDEN_SCHEMA,
            "source": self.source,
            "requests": [request.to_json() for request in self.requests],
            "labels": list(self.labels),
            "scored_output": self.scored_output,
            "accuracy": self.accuracy,
            "min_accuracy": self.min_accuracy,
        }

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")) + "\n")
        return path

    @classmethod
    def read(cls, path: Path, metadata: Metadata) -> GoldenSet:
        """golden.json, its tensors checked against the model's signature; every problem a ContractError."""
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise ContractError(
                f"golden set not found: {path}; export the model again (`make model`)"
            ) from None
        except (OSError, ValueError) as error:
            raise ContractError(f"{path} is not readable JSON: {error}") from None
        if not isinstance(raw, dict) or raw.get("schema") != GOLDEN_SCHEMA:
            raise ContractError(f"{path}: schema is not {GOLDEN_SCHEMA!r}; export the model again")
        reader = _Reader(raw, str(path))
        requests = raw.get("requests")
        if not isinstance(requests, list) or not requests:
            raise reader.fail("requests", "is missing or empty")
        examples = tuple(
            reader.example_from(request, f"requests[{i}]", metadata.inputs, metadata.outputs)
            for i, request in enumerate(requests)
        )
        golden = cls(
            examples,
            reader.integers("labels"),
            reader.optional_text("scored_output"),
            reader.optional_number("accuracy"),
            reader.optional_number("min_accuracy"),
            reader.text("source"),
        )
        if golden.labels and len(golden.labels) != golden.rows:
            raise reader.fail("labels", f"has {len(golden.labels)} labels for {golden.rows} rows")
        names = {t.name for t in metadata.outputs}
        if golden.labels and golden.scored_output not in names:
            raise reader.fail("scored_output", f"is {golden.scored_output!r}, not one of {sorted(names)}")
        return golden


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
        return self.example_from(raw, "example", inputs, outputs)

    def example_from(
        self, raw: Any, where: str, inputs: tuple[TensorSpec, ...], outputs: tuple[TensorSpec, ...]
    ) -> Example:
        """A request and its answer (an example, or one of a golden set's requests)."""
        if not isinstance(raw, dict):
            raise self.fail(where, "must be an object with inputs and outputs")
        example = Example(
            self._tensors(raw.get("inputs"), f"{where}.inputs", inputs),
            self._tensors(raw.get("outputs"), f"{where}.outputs", outputs),
        )
        if len({t.shape[0] for t in example.inputs}) != 1:
            raise self.fail(f"{where}.inputs", "must all have the same number of rows")
        return example

    def integers(self, key: str) -> tuple[int, ...]:
        value = self.raw.get(key, [])
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise self.fail(key, "must be a list of integers")
        return tuple(value)

    def optional_text(self, key: str) -> str | None:
        value = self.raw.get(key)
        if value is not None and not isinstance(value, str):
            raise self.fail(key, "must be a string or null")
        return value

    def optional_number(self, key: str) -> float | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise self.fail(key, f"must be a number from 0 to 1 or null, got {value!r}")
        return float(value)


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
    return [classes[index] for index in top_indices(data, rows, width)]


def top_indices(data: list[Any], rows: int, width: int) -> list[int]:
    """Each row's highest-scoring column in a flat, row-major list of scores."""
    return [max(range(width), key=data[row * width : (row + 1) * width].__getitem__) for row in range(rows)]


def _category_text(value: Any) -> str:
    """A captured value as the reference names its category: text as is, a number as written (ints
    without a fraction, booleans as True/False like numpy's str())."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value if isinstance(value, str) else json.dumps(value)
