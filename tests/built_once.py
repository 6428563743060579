"""Fixture outputs built once per content of what builds them, and reused by later sessions and by the
other xdist workers of this one.

A model the CLI trained or imported is a pure function of the code, config, data and locks that made it
(the pipeline's own promise, tested in tests/model/test_pipeline.py), so a session that finds one built
from the very same files copies it instead of training again. The key is the content of every file
listed under the given roots, with the interpreter's version; any change to any of them builds afresh.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("TWINSERVE_TEST_CACHE", Path.home() / ".cache" / "twinserve" / "built-once"))
# What every model the fixtures build depends on: the code that trains, imports and exports it (model/,
# and the one serving/ module it imports, the contract it writes through; model/inputs.py's digest
# covers the same code), the locks it runs on, and the verbs that call it.
MODEL_INPUTS = ("model", "serving/contract.py", "tests/requirements.txt", "Makefile")


def _files(roots: tuple[str, ...]) -> Iterator[Path]:
    for root in roots:
        path = REPO / root
        if path.is_file():
            yield path
            continue
        for file in sorted(path.rglob("*")):
            if file.is_file() and "__pycache__" not in file.parts:
                yield file


def content_key(name: str, roots: tuple[str, ...]) -> str:
    """sha256 over the name, the interpreter and every file under roots by path and content."""
    digest = hashlib.sha256(f"{name}\0{sys.version}\0".encode())
    for file in _files(roots):
        digest.update(file.relative_to(REPO).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()[:24]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # the other worker waits here while one builds
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def built_once(
    name: str, destination: Path, build: Callable[[Path], None], roots: tuple[str, ...] = MODEL_INPUTS
) -> Path:
    """`destination`, a copy of what `build(directory)` wrote the last time these roots held these files.

    The copy keeps a test that changes its fixture from changing the next session's. A build that fails
    leaves nothing behind; older builds of the same name are removed once a new one is in place."""
    key = content_key(name, roots)
    kept = CACHE / f"{name}-{key}"
    with _locked(CACHE / f"{name}.lock"):
        if not kept.is_dir():
            scratch = CACHE / f".{name}-{uuid.uuid4().hex}"
            try:
                scratch.mkdir(parents=True)
                build(scratch)
                scratch.rename(kept)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            for old in CACHE.glob(f"{name}-*"):
                if old != kept:
                    shutil.rmtree(old, ignore_errors=True)
        # Under the lock: a session built from other files (an edit mid-run) may not prune it meanwhile.
        shutil.copytree(kept, destination, symlinks=True, dirs_exist_ok=True)
    return destination
