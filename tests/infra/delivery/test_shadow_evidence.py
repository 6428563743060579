"""A failed shadow's evidence: the golden set's rows the two sides rank differently (real answers are
in tests/engine/test_shadow_rollout.py; here, the reading of V2 answers)."""

from __future__ import annotations

import json

from delivery.shadow_evidence import differing_rows, top_classes
from delivery.smoke import Example

from serving import contract


def answer(rows: list[list[float]], name: str = "probabilities", datatype: str = "FP32") -> dict:
    width = len(rows[0])
    return {"outputs": [{"name": name, "datatype": datatype, "shape": [len(rows), width],
                         "data": [v for row in rows for v in row]}]}  # fmt: skip


def test_top_classes_come_from_the_first_classifier_output_and_a_regression_has_none() -> None:
    assert top_classes(answer([[0.1, 0.9], [0.7, 0.3]])) == [1, 0]
    assert top_classes(answer([[2.0]])) is None  # one column: no classes
    assert top_classes(answer([[1, 2]], datatype="INT64")) is None


def test_the_rows_ranked_otherwise_are_named_up_to_three() -> None:
    x = contract.Tensor("x", "FP32", (4, 1), (0.0, 1.0, 2.0, 3.0))
    request = contract.Example((x,), ())
    golden = contract.GoldenSet((request, request))
    example = Example("m", "1", request, golden)
    stable, swapped = [[0.9, 0.1]] * 4, [[0.2, 0.8], [0.9, 0.1], [0.2, 0.8], [0.2, 0.8]]

    def send(method: str, url: str, body: bytes | None) -> tuple[int, bytes]:
        return 200, json.dumps(answer(swapped if url.startswith("http://new") else stable)).encode()

    assert differing_rows(example, "http://stable", "http://new", send) == [
        "row 1: stable 0 → new 1", "row 3: stable 0 → new 1", "row 4: stable 0 → new 1",
    ]  # fmt: skip
    assert differing_rows(example, "http://stable", "http://stable", send) == []
