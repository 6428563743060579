"""Serving settings from `TWINSERVE_*` environment variables (and `PORT`), validated once at start.

A frozen dataclass rather than pydantic keeps the Lambda zip lean; every field's
metadata names its variable and says what it is for.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from serving.capture import Policy
from serving.contract import HTTP_PORT, METRICS_PORT, TRACKS
from serving.runtime import RUNTIMES

BUNDLED_MODELS = Path(__file__).resolve().parent / "models"
PREFIX = "TWINSERVE_"


class SettingsError(ValueError):
    """A setting is wrong; the message names the variable and what it accepts."""


def _setting(env: str, doc: str, parse: Callable[[str], Any], default: Any) -> Any:
    return field(default=default, metadata={"env": env, "doc": doc, "parse": parse})


def _number_range(kind: Callable[[str], float], low: float, high: float) -> Callable[[str], Any]:
    def parse(text: str) -> float:
        value = kind(text)
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return parse


def _int_range(low: int, high: int) -> Callable[[str], int]:
    return _number_range(int, low, high)


def _float_range(low: float, high: float) -> Callable[[str], float]:
    return _number_range(float, low, high)


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in allowed:
            raise ValueError(f"must be one of {list(allowed)}")
        return text

    return parse


def _boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered not in {"true", "false", "1", "0"}:
        raise ValueError("must be true or false")
    return lowered in {"true", "1"}


def _base_url(text: str) -> str:
    if not text:
        return ""
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError("must be an http:// or https:// URL with a host, and no query")
    return text.rstrip("/")


# A function qualified by an alias, by name (`my-function:shadow`) or ARN, as Lambda's Invoke takes it.
QUALIFIED_FUNCTION = re.compile(
    r"^(arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:)?[a-zA-Z0-9_-]{1,64}:[a-zA-Z0-9_-]{1,128}$"
)


def _qualified_function(text: str) -> str:
    if text and not QUALIFIED_FUNCTION.match(text):
        raise ValueError("must be a Lambda function qualified by an alias: name:alias or its ARN")
    return text


def _optional_int(text: str) -> int | None:
    return _int_range(1, 2**31)(text) if text else None


@dataclass(frozen=True)
class Settings:
    model_root: Path = _setting(
        "TWINSERVE_MODEL_ROOT", "Artifact root holding <name>/<version>/.", Path, BUNDLED_MODELS
    )
    model_name: str = _setting("TWINSERVE_MODEL_NAME", "Model to serve when the root holds several.", str, "")
    model_version: int | None = _setting(
        "TWINSERVE_MODEL_VERSION", "Version to serve; latest if unset.", _optional_int, None
    )
    runtime: str = _setting(
        "TWINSERVE_RUNTIME", "litert, tensorflow, or auto (LiteRT if installed).", _choice(*RUNTIMES), "auto"
    )
    threads: int = _setting("TWINSERVE_THREADS", "Inference threads per worker.", _int_range(1, 256), 1)
    max_batch_rows: int = _setting(
        "TWINSERVE_MAX_BATCH_ROWS", "Most rows in one request (413 above).", _int_range(1, 1_000_000), 1024
    )
    max_body_bytes: int = _setting(
        "TWINSERVE_MAX_BODY_BYTES",
        "Largest request body (413 above).",
        _int_range(64, 1 << 30),
        6 * 1024 * 1024,
    )
    max_buffered_bytes: int = _setting(
        "TWINSERVE_MAX_BUFFERED_BYTES",
        "Request body bytes a worker holds at once, reading and answering (503 above): with the body's "
        "JSON bounded by the model's shape, what bounds a worker's memory whatever clients send.",
        _int_range(64, 1 << 34),
        24 * 1024 * 1024,
    )
    port: int = _setting("PORT", "HTTP port.", _int_range(1, 65535), HTTP_PORT)
    metrics_port: int = _setting(
        "TWINSERVE_METRICS_PORT",
        "Prometheus /metrics port, apart from PORT so whatever exposes the model never exposes its "
        "metrics; 0 for none.",
        _int_range(0, 65535),
        METRICS_PORT,
    )
    host: str = _setting("TWINSERVE_HOST", "HTTP bind address.", str, "0.0.0.0")  # noqa: S104 - a container listens on all
    workers: int = _setting(
        "TWINSERVE_WORKERS", "HTTP worker processes; 0 means one per available CPU.", _int_range(0, 64), 0
    )
    max_concurrency: int = _setting(
        "TWINSERVE_MAX_CONCURRENCY",
        "Requests per worker between headers received and answer sent, probes aside (429 above).",
        _int_range(1, 100_000),
        512,
    )
    timeout_seconds: float = _setting(
        "TWINSERVE_TIMEOUT_SECONDS",
        "Longest from a request's body received to its answer: queueing and inference (504 above).",
        _float_range(0.001, 900),
        10.0,
    )
    read_timeout_seconds: float = _setting(
        "TWINSERVE_READ_TIMEOUT_SECONDS",
        "Longest a client may take to send a request's headers, and again its body (408, then close).",
        _float_range(0.1, 900),
        20.0,
    )
    max_header_bytes: int = _setting(
        "TWINSERVE_MAX_HEADER_BYTES",
        "Largest request line and headers (431, then close).",
        _int_range(1024, 1 << 20),
        16 * 1024,
    )
    max_connections: int = _setting(
        "TWINSERVE_MAX_CONNECTIONS",
        "Open connections per worker; one more is answered 503 and closed.",
        _int_range(1, 1_000_000),
        2048,
    )
    batch_wait_ms: float = _setting(
        "TWINSERVE_BATCH_WAIT_MS",
        "TensorFlow runtime: longest a request waits for concurrent ones to share its call; 0 turns it off.",
        _float_range(0, 100),
        2.0,
    )
    drain_seconds: float = _setting(
        "TWINSERVE_DRAIN_SECONDS",
        "After SIGTERM: seconds not-ready before closing.",
        _float_range(0, 300),
        5.0,
    )
    hung_worker_seconds: float = _setting(
        "TWINSERVE_HUNG_WORKER_SECONDS",
        "With several workers: one whose event loop has not run for this long is killed and replaced.",
        _float_range(0.5, 600),
        10.0,
    )
    access_log: bool = _setting(
        "TWINSERVE_ACCESS_LOG", "One JSON line per request on stdout.", _boolean, True
    )
    log_level: str = _setting(
        "TWINSERVE_LOG_LEVEL", "Log level.", _choice("debug", "info", "warning", "error"), "info"
    )
    track: str = _setting(
        "TWINSERVE_TRACK", "Which side of a rollout this server is on, as captured records say.",
        _choice(*TRACKS), "stable",
    )  # fmt: skip
    capture_sample_rate: float = _setting(
        "TWINSERVE_CAPTURE_SAMPLE_RATE",
        "Share of inference requests captured as JSON records on stdout (0: capture off).",
        _float_range(0, 1),
        0.0,
    )
    capture_fields: frozenset[str] = _setting(
        "TWINSERVE_CAPTURE_FIELDS",
        "What a record holds: inputs, outputs, or single tensors as inputs.<name> and outputs.<name>.",
        Policy.parse_fields,
        frozenset({"inputs", "outputs"}),
    )
    capture_max_record_bytes: int = _setting(
        "TWINSERVE_CAPTURE_MAX_RECORD_BYTES",
        "A record larger than this keeps its tensors' names and shapes but not their values.",
        _int_range(1024, 256 * 1024),
        16 * 1024,
    )

    shadow_url: str = _setting(
        "TWINSERVE_SHADOW_URL",
        "The new model's servers (http[s]://host[:port]), to mirror answered inference requests to during "
        "a shadow phase; empty: none.",
        _base_url,
        "",
    )
    shadow_function: str = _setting(
        "TWINSERVE_SHADOW_FUNCTION",
        "On Lambda: the new version's alias (function:alias or its ARN) to hand answered inference requests "
        "to by an asynchronous invoke during a shadow phase; empty: none.",
        _qualified_function,
        "",
    )
    shadow_sample_rate: float = _setting(
        "TWINSERVE_SHADOW_SAMPLE_RATE",
        "Share of answered inference requests mirrored to TWINSERVE_SHADOW_URL or TWINSERVE_SHADOW_FUNCTION.",
        _float_range(0, 1),
        0.1,
    )
    shadow_queue: int = _setting(
        "TWINSERVE_SHADOW_QUEUE",
        "Mirrored requests a worker holds for the shadow; one more is dropped and counted, never waited for.",
        _int_range(1, 100_000),
        64,
    )

    @property
    def capture(self) -> Policy:
        return Policy(self.capture_sample_rate, self.capture_fields, self.capture_max_record_bytes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Parse every known variable; an unknown TWINSERVE_* name or a bad value raises, naming it."""
        environ = os.environ if environ is None else environ
        known = {f.metadata["env"]: f for f in fields(cls)}
        unknown = sorted(k for k in environ if k.startswith(PREFIX) and k not in known)
        if unknown:
            raise SettingsError(f"unknown setting(s) {unknown}; known: {sorted(known)}")
        values: dict[str, Any] = {}
        for env, spec in known.items():
            if env not in environ:
                continue
            try:
                values[spec.name] = spec.metadata["parse"](environ[env].strip())
            except ValueError as exc:
                raise SettingsError(f"{env}={environ[env]!r} is invalid: {exc}") from None
        settings = cls(**values)
        if settings.metrics_port and settings.metrics_port == settings.port:
            raise SettingsError(
                f"TWINSERVE_METRICS_PORT={settings.metrics_port} is PORT's too: the metrics need a port "
                "of their own (0 for none)"
            )
        return settings
