"""Fixture outputs built once per content of what builds them: reused while nothing changed, rebuilt when
anything did, never half-kept, and each session given its own copy."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import built_once as cache


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository of one code file, and an empty cache beside it."""
    repo = tmp_path / "repo"
    (repo / "model").mkdir(parents=True)
    (repo / "model" / "train.py").write_text("EPOCHS = 1\n")
    monkeypatch.setattr(cache, "REPO", repo)
    monkeypatch.setattr(cache, "CACHE", tmp_path / "cache")
    return repo


def test_a_build_is_reused_until_what_builds_it_changes(tree: Path, tmp_path: Path) -> None:
    builds: list[Path] = []

    def build(out: Path) -> None:
        builds.append(out)
        (out / "model.bin").write_text(f"built from {(tree / 'model' / 'train.py').read_text()}")

    first = cache.built_once("m", tmp_path / "s1", build, ("model",))
    second = cache.built_once("m", tmp_path / "s2", build, ("model",))
    assert len(builds) == 1
    assert (first / "model.bin").read_text() == (second / "model.bin").read_text()
    (second / "model.bin").write_text("a test changed its copy")
    assert (cache.built_once("m", tmp_path / "s3", build, ("model",)) / "model.bin").read_text() == (
        "built from EPOCHS = 1\n"
    )
    (tree / "model" / "train.py").write_text("EPOCHS = 2\n")
    changed = cache.built_once("m", tmp_path / "s4", build, ("model",))
    assert len(builds) == 2
    assert (changed / "model.bin").read_text() == "built from EPOCHS = 2\n"
    assert len(list((tmp_path / "cache").glob("m-*"))) == 1  # the older build is gone


def test_a_failed_build_keeps_nothing_and_the_next_one_runs(tree: Path, tmp_path: Path) -> None:
    def broken(out: Path) -> None:
        (out / "half").write_text("partial")
        raise RuntimeError("training failed")

    with pytest.raises(RuntimeError, match="training failed"):
        cache.built_once("m", tmp_path / "s1", broken, ("model",))
    assert not [p for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")]
    kept = cache.built_once("m", tmp_path / "s2", lambda out: (out / "ok").write_text("1"), ("model",))
    assert (kept / "ok").read_text() == "1"
