"""Evidence for a failed shadow phase: the golden set's rows whose top class the new model changed, sent
through the stable side and the shadow alike. The rows are the artifact's own (serving/contract.py's
GoldenSet), so no client's request is read or logged to show what moved."""

from __future__ import annotations

import json
from typing import Any

from delivery.smoke import Example
from delivery.targets import Send
from serving.contract import MIX_MAX_CLASSES


def top_classes(answer: dict[str, Any]) -> list[int] | None:
    """Each row's top class in a V2 answer's classifier output (the first of floats, 2 to
    MIX_MAX_CLASSES wide, as the prediction mix picks it); None for a model with none."""
    for output in answer.get("outputs", []):
        shape, data = output.get("shape") or [], output.get("data") or []
        if (
            str(output.get("datatype", "")).startswith("FP")
            and len(shape) == 2
            and 2 <= shape[1] <= MIX_MAX_CLASSES
        ):
            width = shape[1]
            rows = [data[i : i + width] for i in range(0, len(data), width)]
            return [row.index(max(row)) for row in rows]
    return None


def differing_rows(example: Example, stable: str, new: str, send: Send, most: int = 3) -> list[str]:
    """Up to `most` golden rows the two sides rank differently, as `row N: stable A → new B`."""
    found: list[str] = []
    offset = 0
    for request in example.golden.requests:
        body = json.dumps(request.v2_request()).encode()
        tops = []
        for base in (stable, new):
            status, answer = send("POST", f"{base}/v2/models/{example.model}/infer", body)
            classes = top_classes(json.loads(answer)) if status == 200 else None
            if classes is None:
                return found
            tops.append(classes)
        for index, (ours, theirs) in enumerate(zip(*tops, strict=True)):
            if ours != theirs and len(found) < most:
                found.append(f"row {offset + index + 1}: stable {ours} → new {theirs}")
        offset += request.rows()
    return found
