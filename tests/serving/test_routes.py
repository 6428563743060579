"""The route table's response type: labelling a response keeps every field but the route."""

from __future__ import annotations

import dataclasses

import numpy as np

from serving.routes import Response


def test_labelling_a_response_keeps_every_other_field() -> None:
    inputs = {"features": np.ones((1, 4), np.float32)}
    outputs = {"probabilities": np.ones((1, 3), np.float32)}
    original = Response(200, b"{}", (("content-type", "x"),), "unmatched", 1, inputs, outputs, "an error")
    labelled = original.labelled("v2_infer")
    fields = [field.name for field in dataclasses.fields(Response)]
    assert [getattr(labelled, name) for name in fields if name != "route"] == [
        getattr(original, name) for name in fields if name != "route"
    ]
    assert labelled.route == "v2_infer"
