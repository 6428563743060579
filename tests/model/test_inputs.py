"""What an artifact's digest covers: a change to any code that writes the artifact rebuilds it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from model import inputs
from model.importer import import_digest
from model.source import ImportRequest

REPO = Path(__file__).resolve().parents[2]


def change_contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """serving/contract.py as a commit that changes only how metadata.json is written leaves it."""
    copy = tmp_path / "contract.py"
    copy.write_text(inputs.CONTRACT.read_text() + "\n# metadata.json gains a field\n")
    monkeypatch.setattr(inputs, "CONTRACT", copy)


def training(tmp_path: Path) -> Callable[[], str]:
    return lambda: inputs.inputs_digest(REPO / "model" / "config.yaml", REPO / "model" / "data" / "iris.csv")


def importing(tmp_path: Path) -> Callable[[], str]:
    source = tmp_path / "model.keras"
    source.write_bytes(b"weights")
    return lambda: import_digest(ImportRequest(source=source))


@pytest.mark.parametrize("digest_of", [training, importing])
def test_a_changed_contract_changes_the_digest(
    digest_of: Callable[[Path], Callable[[], str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = digest_of(tmp_path)
    before = digest()
    assert digest() == before
    change_contract(tmp_path, monkeypatch)
    assert digest() != before
