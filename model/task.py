"""The seam for your own model: the data's columns, the labels and the network.

Edit this module (and `config.yaml`) to serve another tabular classifier; the
rest of the pipeline, the serving core and the infrastructure read names,
shapes and labels from the exported metadata and need no change.
"""

from __future__ import annotations

import keras
import numpy as np

FEATURES: tuple[str, ...] = (
    "sepal_length_cm",
    "sepal_width_cm",
    "petal_length_cm",
    "petal_width_cm",
)
LABEL_COLUMN = "species"
LABELS: tuple[str, ...] = ("setosa", "versicolor", "virginica")
INPUT_NAME = "features"
OUTPUT_NAME = "probabilities"


def build_model(train_x: np.ndarray) -> keras.Model:
    """A small MLP whose first layer standardises raw measurements, so clients send cm."""
    normalize = keras.layers.Normalization(axis=-1)
    normalize.adapt(train_x)
    inputs = keras.Input(shape=(len(FEATURES),), dtype="float32", name=INPUT_NAME)
    hidden = keras.layers.Dense(16, activation="relu")(normalize(inputs))
    outputs = keras.layers.Dense(len(LABELS), activation="softmax", name=OUTPUT_NAME)(hidden)
    return keras.Model(inputs, outputs, name="iris_mlp")
