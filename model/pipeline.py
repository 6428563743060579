"""The whole job in order: config, data, fit, gate, export. Nothing is written unless the gate passes."""

from __future__ import annotations

import json
from pathlib import Path

from model import dataset, gate, task, train
from model.config import load_config
from model.export import Provenance, keras_saver, write_artifact
from model.inputs import METADATA_FILE, inputs_digest, up_to_date
from model.samples import Samples


def run(config_path: Path, root: Path) -> tuple[Path, dict[str, float], bool]:
    """The export, its metrics, and whether it was written now (False: the one there has these inputs)."""
    config = load_config(config_path)
    target = root / config.name / str(config.version)
    digest = inputs_digest(config_path, config.data)
    if up_to_date(target, digest):
        return target, json.loads((target / METADATA_FILE).read_text())["metrics"], False
    features, labels = dataset.load_examples(config.data)
    data = dataset.split(features, labels, config.test_fraction, config.seed)
    model = train.fit(config, data)
    metrics = gate.evaluate(train.predict(model, data.test_x), data.test_y)
    gate.check(metrics, config.gate)
    provenance = Provenance(
        name=config.name,
        version=config.version,
        inputs_sha256=digest,
        metrics=metrics,
        extra={
            "feature_names": list(task.FEATURES),
            "labels": list(task.LABELS),
            "training_data": {"file": config.data.name, "sha256": dataset.sha256_of(config.data)},
        },
    )
    samples = Samples({task.INPUT_NAME: data.test_x}, data.test_y, config.gate.min_accuracy)
    training = {task.INPUT_NAME: data.train_x}  # what drift is measured against (reference.json)
    written = write_artifact(root, provenance, keras_saver(model), lambda _: samples, training=training)
    return written, metrics, True
