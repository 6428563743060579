"""Shadow traffic on Lambda. The stable version hands a sampled share of the inference requests it
answered, with its answers, to the new version's `shadow` alias by an asynchronous invoke; the new
version answers each itself, compares (serving/shadow_verdict.py) and publishes the verdict as a
CloudWatch embedded-metric-format line, which CloudWatch turns into metrics its alarms read.

A Lambda environment is frozen once the handler returns, so the invoke is made before returning: a
sampled request pays one call to Lambda's Invoke API (an asynchronous invoke returns once the event is
queued), bounded by short timeouts and never failing the client. With no `shadow` alias (no shadow
phase now), mirroring pauses for MISSING_PAUSE_SECONDS at a time; after any other failure, for
FAILED_PAUSE_SECONDS. A request whose event would pass the asynchronous payload limit is skipped.

Metrics (serving/emf.py's namespace): the stable side's ShadowMirrorRequests by Function and Outcome; the
shadow's ShadowCompared, ShadowDiffered, ShadowRowsAgreed and ShadowRowsDisagreed by Function and
Version, which the program's disagreement alarm reads.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable
from typing import Any

from serving.artifact import ModelSpec
from serving.dataplane import DataPlane
from serving.emf import SHADOW_ROWS_AGREED, SHADOW_ROWS_DISAGREED, emf_line
from serving.errors import BadRequest, ServingError
from serving.jsonio import dumps
from serving.prediction_mix import classifier
from serving.routes import Request, Response, error_response, handle
from serving.shadow_verdict import answer_outputs, compare, outputs_json, request_body

EVENT_KEY = "twinserve-shadow"  # an event holding it is a mirrored request, not a client's
MAX_EVENT_BYTES = 256 * 1024  # Lambda's payload limit for an asynchronous invocation
MISSING_PAUSE_SECONDS = 60.0
FAILED_PAUSE_SECONDS = 5.0
logger = logging.getLogger("twinserve")

Invoke = Callable[[str, bytes], None]  # (qualified function, payload): raises on failure


class NoShadowAlias(Exception):
    """The alias is not there: no shadow phase runs now."""


def lambda_invoke() -> Invoke:
    """Lambda's Invoke API through botocore, which Lambda's managed Python runtime carries (imported
    only when a shadow is configured): one attempt, short timeouts, the execution role's credentials."""
    import botocore.session
    from botocore.config import Config

    config = Config(connect_timeout=1, read_timeout=2, retries={"total_max_attempts": 1})
    region = os.environ.get("AWS_REGION")  # Lambda's own: the function's region, where its alias is
    client = botocore.session.get_session().create_client("lambda", region_name=region, config=config)

    def invoke(function: str, payload: bytes) -> None:
        try:
            client.invoke(FunctionName=function, InvocationType="Event", Payload=payload)
        except client.exceptions.ResourceNotFoundException as error:
            raise NoShadowAlias(str(error)) from None

    return invoke


class LambdaMirror:
    """The stable version's side: `offer` an answered request; the outcome goes to the log as EMF."""

    def __init__(
        self, spec: ModelSpec, target: str, sample_rate: float, invoke: Invoke | None = None
    ) -> None:
        self.spec, self.target, self.sample_rate = spec, target, sample_rate
        self._invoke = invoke
        self.paused_until = 0.0

    def wants(self, response: Response) -> bool:
        """An answered inference with its tensors, in the sampled share."""
        return response.answered_inference and random.random() < self.sample_rate  # noqa: S311 - a share

    def offer(self, response: Response, function: str) -> str:
        """Hand the request and its answer to the shadow; returns (and logs as EMF) the outcome."""
        outcome = self._send(response)
        print(emf_line({"Function": function, "Outcome": outcome}, {"ShadowMirrorRequests": 1}), flush=True)
        return outcome

    def _send(self, response: Response) -> str:
        if time.monotonic() < self.paused_until:
            return "paused"
        body = request_body(self.spec, response.inputs)  # type: ignore[arg-type]
        if body is None:
            return "skipped"
        event = {EVENT_KEY: {"request": body.decode(), "outputs": outputs_json(response.outputs)}}  # type: ignore[arg-type]
        payload = dumps(event)
        if len(payload) > MAX_EVENT_BYTES:
            return "skipped"
        try:
            if self._invoke is None:
                self._invoke = lambda_invoke()
            self._invoke(self.target, payload)
        except NoShadowAlias:
            self.paused_until = time.monotonic() + MISSING_PAUSE_SECONDS
            return "missing"
        except Exception as error:  # a mirror must never fail the client's request
            logger.warning("shadow invoke of %s failed: %s", self.target, error)
            self.paused_until = time.monotonic() + FAILED_PAUSE_SECONDS
            return "failed"
        return "mirrored"


def judge(plane: DataPlane, event: dict[str, Any], context: object, max_body_bytes: int) -> dict[str, Any]:
    """The shadow version's side: answer the mirrored request, compare with the stable answer it came
    with, and log the verdict as EMF by function and this version."""
    spec = plane.spec
    dimensions = {
        "Function": str(getattr(context, "function_name", "")),
        "Version": str(getattr(context, "function_version", "")),
    }
    mirrored = event[EVENT_KEY]
    try:
        body, stable_outputs = str(mirrored["request"]).encode(), dumps({"outputs": mirrored["outputs"]})
        request = Request("POST", f"/v2/models/{spec.name}/infer", {"content-type": "application/json"}, body)
        response = handle(plane, request, max_body_bytes)
        stable = answer_outputs(spec, stable_outputs) if response.status == 200 else {}
    except (KeyError, TypeError, ValueError, ServingError) as error:
        response, stable = error_response(BadRequest(f"not a mirrored request: {error}")), {}
    if response.status != 200 or response.outputs is None:
        print(emf_line(dimensions, {"ShadowFailed": 1}), flush=True)
        return {"status": response.status, "error": response.error}
    scored, _ = classifier(spec)
    verdict = compare(spec, scored, stable, response.outputs)
    counts = {
        "ShadowCompared" if verdict.within_tolerance else "ShadowDiffered": 1,
        SHADOW_ROWS_AGREED: verdict.rows_agreed,
        SHADOW_ROWS_DISAGREED: verdict.rows_disagreed,
    }
    print(emf_line(dimensions, counts), flush=True)
    return {"status": 200, **counts}


def mirror_for(spec: ModelSpec, target: str, sample_rate: float) -> LambdaMirror | None:
    """A mirror when TWINSERVE_SHADOW_FUNCTION names the shadow alias, else None."""
    return LambdaMirror(spec, target, sample_rate) if target and sample_rate > 0 else None
