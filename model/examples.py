"""Three already-trained models of the kinds teams bring, saved as they would bring them.

`python -m model.examples --out DIR` writes, from data the packages ship or that is
generated here (no downloads), each with an evaluation file for `EVAL=`:
- `digits.keras`: a small CNN on scikit-learn's bundled 8x8 digits, `uint8 [-1, 8, 8, 1]` in.
- `reviews/`: a SavedModel of a text classifier whose preprocessing is inside the model,
  a string in, class probabilities and the label (`label_bytes`) out.
- `shop.h5`: two inputs (float features, int64 category ids), two outputs
  (class probabilities and a regression value).
`--image` writes `mobilenet.keras` instead: Keras' MobileNetV2 with random weights (no download),
`float32 [-1, 224, 224, 3]` in, 1,000 class probabilities out — an image model's size and compute,
for `make bench-image`.
Then `make model SOURCE=DIR/digits.keras` imports one like any team's file.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

SEED = 7
POSITIVE = ("great", "good", "excellent", "love", "fine", "happy", "perfect", "nice")
NEGATIVE = ("bad", "awful", "poor", "hate", "broken", "sad", "terrible", "slow")
NEUTRAL = ("the", "a", "product", "it", "was", "very", "and", "delivery")
REVIEW_LABELS = ("negative", "positive")


def digits_data() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images.astype(np.uint8)[..., None], digits.target.astype(np.int64)


def digits_model(images: np.ndarray, labels: np.ndarray) -> keras.Model:

    keras.utils.set_random_seed(SEED)
    pixels = keras.Input(shape=(8, 8, 1), dtype="uint8", name="pixels")
    hidden = keras.layers.Rescaling(1 / 16)(pixels)
    hidden = keras.layers.Conv2D(8, 3, activation="relu")(hidden)
    hidden = keras.layers.Flatten()(hidden)
    probabilities = keras.layers.Dense(10, activation="softmax", name="probabilities")(hidden)
    model = keras.Model(pixels, probabilities, name="digits_cnn")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(images, labels, epochs=12, batch_size=64, shuffle=False, verbose=0)
    return model


def reviews_data(count: int = 600) -> tuple[np.ndarray, np.ndarray]:
    """Short reviews whose words lean one way; the label is the way they lean."""
    rng = np.random.default_rng(SEED)
    texts, labels = [], []
    for _ in range(count):
        label = int(rng.integers(2))
        leaning, other = (POSITIVE, NEGATIVE) if label else (NEGATIVE, POSITIVE)
        words = list(rng.choice(leaning, 3)) + list(rng.choice(other, 1)) + list(rng.choice(NEUTRAL, 3))
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(label)
    return np.array(texts, dtype=object), np.array(labels, dtype=np.int64)


def save_reviews_model(texts: np.ndarray, labels: np.ndarray, directory: Path) -> None:
    """A SavedModel with its own signature: a batch of strings in, probabilities and the label's name out."""

    keras.utils.set_random_seed(SEED)
    vectorize = keras.layers.TextVectorization(max_tokens=64, output_sequence_length=8)
    vectorize.adapt(tf.constant(texts.astype(str)))
    text = keras.Input(shape=(), dtype="string", name="text")
    hidden = keras.layers.Embedding(64, 8)(vectorize(text))
    hidden = keras.layers.GlobalAveragePooling1D()(hidden)
    probabilities = keras.layers.Dense(2, activation="softmax")(hidden)
    model = keras.Model(text, probabilities)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(tf.constant(texts.astype(str)), labels, epochs=20, batch_size=32, shuffle=False, verbose=0)
    names = tf.constant(REVIEW_LABELS)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(batch: tf.Tensor) -> dict[str, tf.Tensor]:
        scores = model(batch, training=False)
        return {"probabilities": scores, "label_bytes": tf.gather(names, tf.argmax(scores, axis=1))}

    holder = tf.Module()
    holder.model, holder.serve = model, serve
    tf.saved_model.save(holder, str(directory), signatures={"serving_default": serve})


def shop_data(count: int = 800) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Features and a category id decide a class; the regression target is a smooth function of both."""
    rng = np.random.default_rng(SEED)
    features = rng.normal(size=(count, 4)).astype(np.float32)
    category = rng.integers(0, 5, size=(count, 1)).astype(np.int64)
    classes = ((features[:, 0] + 0.5 * category[:, 0] - 1.0) > 0).astype(np.int64) + (features[:, 1] > 1.0)
    score = features @ np.array([0.5, -0.25, 1.0, 0.0], dtype=np.float32) + 0.2 * category[:, 0]
    return features, category, classes.astype(np.int64), score[:, None].astype(np.float32)


def shop_model(
    features: np.ndarray, category: np.ndarray, classes: np.ndarray, score: np.ndarray
) -> keras.Model:

    keras.utils.set_random_seed(SEED)
    features_in = keras.Input(shape=(4,), dtype="float32", name="features")
    category_in = keras.Input(shape=(1,), dtype="int64", name="category")
    embedded = keras.layers.Flatten()(keras.layers.Embedding(5, 3)(category_in))
    hidden = keras.layers.Dense(16, activation="relu")(keras.layers.Concatenate()([features_in, embedded]))
    class_probabilities = keras.layers.Dense(3, activation="softmax", name="class_probabilities")(hidden)
    score_out = keras.layers.Dense(1, name="score")(hidden)
    model = keras.Model([features_in, category_in], [class_probabilities, score_out], name="shop")
    model.compile(optimizer="adam", loss=["sparse_categorical_crossentropy", "mse"])
    model.fit([features, category], [classes, score], epochs=30, batch_size=64, shuffle=False, verbose=0)
    return model


def write_all(out: Path) -> list[Path]:
    """Train and save the three examples and their evaluation files into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    images, digit_labels = digits_data()
    digits_model(images, digit_labels).save(out / "digits.keras")
    np.savez(out / "digits-eval.npz", pixels=images[-200:], labels=digit_labels[-200:])
    texts, review_labels = reviews_data()
    save_reviews_model(texts, review_labels, out / "reviews")
    np.savez(out / "reviews-eval.npz", text=texts[-100:].astype(bytes), labels=review_labels[-100:])
    features, category, classes, score = shop_data()
    shop_model(features, category, classes, score).save(out / "shop.h5")
    np.savez(out / "shop-eval.npz", features=features[-160:], category=category[-160:], labels=classes[-160:])
    return [out / "digits.keras", out / "reviews", out / "shop.h5"]


def save_image_model(out: Path) -> Path:
    """MobileNetV2 as a team's image classifier would be, with random weights: its answers mean nothing,
    its size, compute and 3 MB JSON requests are what an image model's serving costs."""
    keras.utils.set_random_seed(SEED)
    model = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3), classes=1000)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "mobilenet.keras")
    return out / "mobilenet.keras"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.examples", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="directory for the example model files")
    parser.add_argument("--image", action="store_true", help="write only mobilenet.keras, an image model")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for path in [save_image_model(args.out)] if args.image else write_all(args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
