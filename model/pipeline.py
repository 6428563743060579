"""The whole job in order: config, data, fit, gate, export. Nothing is written unless the gate passes."""

from __future__ import annotations

from pathlib import Path

from model import dataset, gate, train
from model.config import load_config
from model.export import export


def run(config_path: Path, root: Path) -> tuple[Path, dict[str, float]]:
    config = load_config(config_path)
    features, labels = dataset.load_examples(config.data)
    data = dataset.split(features, labels, config.test_fraction, config.seed)
    model = train.fit(config, data)
    metrics = gate.evaluate(train.predict(model, data.test_x), data.test_y)
    gate.check(metrics, config.gate)
    return export(model, config, metrics, dataset.sha256_of(config.data), root), metrics
