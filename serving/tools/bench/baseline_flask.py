"""The baseline as blog posts deploy it: Flask, `python app.py`, the model called on every request.

It speaks V2 JSON like our server so one wrk script drives both, and it does no more than a
hand-written service would: numpy arrays from the JSON, the SavedModel's signature, lists back.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import tensorflow as tf
from flask import Flask, jsonify, request

from serving.contract import BY_TENSORFLOW, BY_V2

app = Flask(__name__)
signature = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]


def _values(tensor: tf.Tensor) -> list:
    flat = tensor.numpy().reshape(-1).tolist()
    return [v.decode() if isinstance(v, bytes) else v for v in flat]


@app.route("/v2/models/<name>/infer", methods=["POST"])
def infer(name: str):
    inputs = {
        t["name"]: tf.constant(
            np.array(t["data"], dtype=BY_V2[t["datatype"]].numpy).reshape(t["shape"]),
            dtype=BY_V2[t["datatype"]].tensorflow,
        )
        for t in request.get_json()["inputs"]
    }
    outputs = signature(**inputs)
    return jsonify({
        "model_name": name,
        "outputs": [
            {"name": key, "datatype": BY_TENSORFLOW[value.dtype.name].v2, "shape": list(value.shape),
             "data": _values(value)}
            for key, value in outputs.items()
        ],
    })  # fmt: skip


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]))
