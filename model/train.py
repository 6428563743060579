"""Fits the task's model deterministically: same data, config and seed give the same weights."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from model import task
from model.config import TrainingConfig
from model.dataset import Split


def make_deterministic(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow and ask TensorFlow for deterministic kernels."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def fit(config: TrainingConfig, data: Split) -> keras.Model:
    """Full-batch Adam on the training split; the data is small enough for one batch."""
    make_deterministic(config.seed)
    model = task.build_model(data.train_x)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(),
    )
    model.fit(
        data.train_x,
        data.train_y,
        batch_size=len(data.train_x),
        epochs=config.epochs,
        shuffle=False,
        verbose=0,
    )
    return model


def predict(model: keras.Model, features: np.ndarray) -> np.ndarray:
    """Probabilities through a plain call (Keras' predict loop is slow for small inputs)."""
    return np.asarray(model(features, training=False))
