"""What an artifact is a function of: its training inputs, named by one digest.

The data, the config, the training code and its lock; nothing else (not the git commit,
not the clock), so a commit that changes none of them gives the same digest, and
`make model` can tell that the artifact it would write is the one already there.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from model.dataset import sha256_of
from serving import contract

CODE = Path(__file__).resolve().parent
# The one module outside model/ an export runs: it writes metadata.json and reads the reference.
CONTRACT = Path(contract.__file__).resolve()
METADATA_FILE = contract.METADATA_FILE


def code_parts() -> list[tuple[str, str]]:
    """(role, sha256) of the code that writes an artifact: model/'s modules, the contract, the lock."""
    parts = [(f"code/{p.name}", sha256_of(p)) for p in sorted(CODE.glob("*.py"))]
    parts.append(("code/serving/contract.py", sha256_of(CONTRACT)))
    return [*parts, ("lock", sha256_of(CODE / "requirements.txt"))]


def inputs_digest(config_path: Path, data_path: Path) -> str:
    """sha256 over (role, sha256) pairs: the code files by name, the config and data by content only."""
    parts = [*code_parts(), ("config", sha256_of(config_path))]
    parts.append(("data", sha256_of(data_path)))
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def file_hashes(directory: Path) -> dict[str, str]:
    """sha256 of every file of an export but its metadata, by path inside it: what `metadata.json` lists."""
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.name != METADATA_FILE)
    return {p.relative_to(directory).as_posix(): sha256_of(p) for p in files}


def up_to_date(version_dir: Path, digest: str) -> bool:
    """The export there came from these inputs and its files are intact."""
    try:
        record = contract.Metadata.read(version_dir).record  # an export the contract refuses is redone
    except contract.ContractError:
        return False
    files = record.get("files")
    return record.get("inputs_sha256") == digest and bool(files) and file_hashes(version_dir) == files
