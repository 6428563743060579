"""Every lock installed where credentials are present pins each package by version and hash, and uv
itself is installed by hash: a compromised index or mirror cannot swap a file under a deploy."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.workflows.conftest import REPO

LOCKS = [
    "tests/requirements.txt",
    "infra/requirements.txt",
    "model/requirements.txt",
    "tests/tools/uv-requirements.txt",
    *[str(p.relative_to(REPO)) for p in sorted((REPO / "serving").glob("requirements-*.txt"))],
]


def requirements(lock: Path) -> dict[str, list[str]]:
    """Each pinned requirement and its hashes (pip's format: continuation lines of --hash=sha256:…)."""
    found: dict[str, list[str]] = {}
    current = None
    for line in lock.read_text().splitlines():
        if re.match(r"^[A-Za-z0-9]", line):
            current = line.split(" ")[0].split(";")[0]
            found[current] = []
        elif current and (m := re.search(r"--hash=sha256:([0-9a-f]{64})", line)):
            found[current].append(m.group(1))
    return found


@pytest.mark.parametrize("lock", LOCKS)
def test_every_package_is_pinned_by_version_and_hash(lock: str) -> None:
    found = requirements(REPO / lock)
    assert found, lock
    assert all("==" in name for name in found), [n for n in found if "==" not in n]
    assert [name for name, hashes in found.items() if not hashes] == []


def test_the_makefile_installs_uv_by_hash_and_locks_with_hashes() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert "pip install -q --require-hashes -r $(UV_LOCK)" in makefile
    assert "uv==" not in makefile
    lock_recipe = makefile.split("\nlock:")[1].split("\n\n")[0]
    assert lock_recipe.count("--generate-hashes") == 4


def test_a_file_whose_hash_differs_is_refused(tmp_path: Path) -> None:
    """pip, as the Makefile runs it for uv: a lock whose hash does not match the file is refused."""
    (uv,) = [n for n in requirements(REPO / "tests/tools/uv-requirements.txt")]
    tampered = tmp_path / "uv.txt"
    tampered.write_text(f"{uv} --hash=sha256:{'0' * 64}\n")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes", "-r", str(tampered),
         "-d", str(tmp_path / "d"), "-q"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode != 0
    assert "THESE PACKAGES DO NOT MATCH THE HASHES" in result.stderr
