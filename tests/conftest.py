"""Session fixtures shared across parts: the real model, exported once by the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import processes
from tests.built_once import built_once

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def leaves_nothing_running() -> Iterator[None]:
    """Every process the session starts inherits a marker; any still running at the end fails it."""
    marker = uuid.uuid4().hex
    os.environ[processes.MARKER] = marker
    yield
    left = processes.leftovers(marker)
    assert not left, f"the tests left processes running (now killed): {left}"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m model` as a user runs it, from the repository root."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-m", "model", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="session")
def model_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An artifact root holding iris/1, trained and exported by the CLI."""

    def train(root: Path) -> None:
        result = run_cli("--output", str(root))
        assert result.returncode == 0, result.stderr

    return built_once("iris", tmp_path_factory.mktemp("models"), train)


@pytest.fixture(scope="session")
def artifact(model_root: Path) -> Path:
    return model_root / "iris" / "1"


def make(*args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    """A Makefile verb as a user runs it, from the repository root."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        ["make", "-s", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="session")
def example_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The three example models as teams bring them (digits.keras, reviews/, shop.h5) and their EVAL files."""

    def write(out: Path) -> None:
        result = make("examples", f"EXAMPLES_DIR={out}")
        assert result.returncode == 0, result.stderr

    return built_once("example-files", tmp_path_factory.mktemp("examples"), write)


EXAMPLE_SOURCES = {"digits": "digits.keras", "reviews": "reviews", "shop": "shop.h5"}


@pytest.fixture(scope="session")
def examples_root(tmp_path_factory: pytest.TempPathFactory, example_files: Path) -> Path:
    """An artifact root holding the three examples, each imported by `make model SOURCE=… EVAL=…`."""

    def import_all(root: Path) -> None:
        for name, file in EXAMPLE_SOURCES.items():
            source = example_files / file
            result = make(
                "model",
                f"SOURCE={source}",
                f"EVAL={example_files / f'{name}-eval.npz'}",
                f"MODEL_ROOT={root}",
            )
            assert result.returncode == 0, result.stderr

    return built_once("examples", tmp_path_factory.mktemp("imported"), import_all)
