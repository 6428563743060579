"""Models that misbehave on purpose, for the canary's, the rollout's and the smoke test's tests: one that
fails on an input, one that is slow on another, a healthy twin; a small classifier with two classes
swapped beside an honest retrain of it; and Irises that answer 200 with two classes swapped, or
collapsed onto one class, beside an honest retrain.
`python -m tests.workflows.faulty_models OUT errors none sorter-swapped` writes each as a model root,
OUT/<fault>/models, for a test in another virtualenv."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.built_once import MODEL_INPUTS, built_once
from tests.serving.conftest import import_signature

FAILING, SLOW = 13.0, 7.0  # inputs the faulty models misbehave on; the export's example never holds them


def build(directory: Path, fault: str) -> Path:
    """`scorer`, `y = 2x`, imported into a model root under `directory`: "errors" fails on FAILING,
    "slow" computes for a while on SLOW, "none" is healthy."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32, name="x")])
    def serve(x: tf.Tensor) -> dict[str, tf.Tensor]:
        checks = []
        if fault == "errors":
            checks.append(tf.debugging.assert_none_equal(x, FAILING, message="the canary's fault"))
        y = x * 2
        if fault == "slow":

            def spin() -> tf.Tensor:  # about 80 GFLOP on the input itself, so nothing folds it away
                m = tf.ones([256, 256]) * tf.reduce_max(x) / (256.0 * SLOW)
                _, m = tf.while_loop(lambda i, _: i < 2400, lambda i, m: (i + 1, tf.matmul(m, m)), (0, m))
                return tf.reduce_sum(m) * 0.0

            y = y + tf.cond(tf.reduce_any(tf.equal(x, SLOW)), spin, lambda: 0.0)
        with tf.control_dependencies(checks):
            return {"y": tf.identity(y)}

    root, _ = import_signature(serve, directory / "scorer")
    return root


def build_sorter(directory: Path, variant: str) -> Path:
    """`sorter`, three classes of one number, imported into a model root under `directory`: x < 5 is
    class 1, x > 5 class 0, x = 5 class 2. "swapped" answers classes 0 and 1 the other way round,
    "collapsed" class 0 whatever x is, "retrained" with every probability slightly moved, the same
    top class; "stable" as it is."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32, name="x")])
    def serve(x: tf.Tensor) -> dict[str, tf.Tensor]:
        logits = tf.concat([x, 10.0 - x, 6.0 - 2.0 * tf.abs(x - 5.0)], axis=1)
        probabilities = tf.nn.softmax(logits)
        if variant == "stable":
            return {"probabilities": probabilities}
        return {"probabilities": _varied(variant, probabilities, swapped=[1, 0, 2])}

    root, _ = import_signature(serve, directory / "sorter")
    return root


def built(directory: Path, fault: str) -> Path:
    """`build`'s (or `build_sorter`'s, for `sorter-<variant>`) model root, copied from the last session's
    build while nothing that makes it changed."""
    roots = (
        *MODEL_INPUTS,
        "tests/workflows/faulty_models.py",
        "tests/serving/conftest.py",
        "tests/conftest.py",
    )
    variant = fault.removeprefix("sorter-")
    make = (
        (lambda scratch: build_sorter(scratch, variant)) if variant != fault else (lambda s: build(s, fault))
    )
    built_once(f"faulty-{fault}", directory, make, roots)
    return directory / "models"


SWAPPED = [0, 2, 1]  # the example's row is class 0: only the golden set's other rows tell them apart


def _varied(variant: str, probabilities: object, swapped: list[int] = SWAPPED) -> object:
    """A classifier's answers as the variant gives them: two classes swapped, everything the first
    class, or a retrain's (the same top class, every probability slightly different)."""
    import tensorflow as tf

    if variant == "swapped":
        return tf.gather(probabilities, swapped, axis=1)
    if variant == "collapsed":
        return tf.zeros_like(probabilities) + tf.constant([0.9, 0.06, 0.04])
    sharper = tf.pow(probabilities, 1.05)  # "retrained"
    return sharper / tf.reduce_sum(sharper, axis=1, keepdims=True)


def build_iris(directory: Path, artifact: Path, variant: str) -> None:
    """Iris as `artifact` serves it, its answers varied (`_varied`), imported as iris v1 into
    `directory`/models (with its own example, golden set and model.tflite)."""
    import tensorflow as tf

    from tests.conftest import run_cli

    module = tf.Module()
    module.loaded = tf.saved_model.load(str(artifact))  # its variables live as long as the module
    served = module.loaded.signatures["serving_default"]

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="features")])
    def serve(features: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"probabilities": _varied(variant, served(features=features)["probabilities"])}

    module.serve = serve
    tf.saved_model.save(module, str(directory / variant), signatures={"serving_default": serve})
    result = run_cli(
        "--source", str(directory / variant), "--name", "iris", "--output", str(directory / "models")
    )
    assert result.returncode == 0, result.stderr


def built_iris(directory: Path, artifact: Path, variant: str) -> Path:
    """`build_iris`'s model root, built once per content of what makes it."""
    built_once(f"iris-{variant}", directory, lambda scratch: build_iris(scratch, artifact, variant),
               (*MODEL_INPUTS, "tests/workflows/faulty_models.py", "tests/conftest.py"))  # fmt: skip
    return directory / "models"


if __name__ == "__main__":
    out = Path(sys.argv[1])
    for fault in sys.argv[2:]:
        (out / fault).mkdir(parents=True, exist_ok=True)
        print(built(out / fault, fault))
