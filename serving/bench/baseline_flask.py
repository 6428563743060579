"""The baseline as blog posts deploy it: Flask, `python app.py`, `model.predict` on every request."""

from __future__ import annotations

import os
import sys

import keras
import numpy as np
from flask import Flask, jsonify, request

app = Flask(__name__)
model = keras.Sequential([keras.layers.TFSMLayer(sys.argv[1], call_endpoint="serving_default")])


@app.route("/v1/models/iris:predict", methods=["POST"])
def predict():  # the blog's code, kept as it is
    instances = np.asarray(request.get_json()["instances"], dtype=np.float32)
    outputs = model.predict(instances, verbose=0)
    return jsonify({"predictions": outputs["probabilities"].tolist()})


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]))
