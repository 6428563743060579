"""The baseline for a team's own file, as blog posts serve one: Flask, `keras.models.load_model`, and
`model.predict` on every request. `python -m serving.bench.baseline_flask_keras MODEL.keras NAME`."""

from __future__ import annotations

import os
import sys

import keras
import numpy as np
from flask import Flask, jsonify, request

app = Flask(__name__)
model = keras.models.load_model(sys.argv[1], compile=False)


@app.route(f"/v1/models/{sys.argv[2]}:predict", methods=["POST"])
def predict():  # the blog's code, with the cast to the input's dtype that Keras insists on
    instances = np.asarray(request.get_json()["instances"], dtype=model.inputs[0].dtype)
    return jsonify({"predictions": model.predict(instances, verbose=0).tolist()})


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]))
