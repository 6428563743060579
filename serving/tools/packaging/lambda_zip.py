"""The Lambda zip: the handler, LiteRT and numpy for Lambda's Python on one architecture, and the model.

Reproducible: wheels are pinned by hash, entries are written in sorted order with a fixed
timestamp and permissions, and bytecode (when an interpreter of the target version is at
hand) is compiled with hash-based invalidation and `/var/task` paths.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
REQUIREMENTS = REPO / "serving" / "requirements-litert.txt"
# Amazon Linux 2023 (Lambda's python3.12 and newer) has glibc 2.34.
PLATFORMS = {"x86_64": "x86_64-manylinux_2_34", "arm64": "aarch64-manylinux_2_34"}
SERVING = REPO / "serving"
HANDLER_MODULE = "lambda_handler"  # the Lambda handler string's module: serving.lambda_handler.handler
MODEL_FILES = ("model.tflite", "metadata.json")
# Never loaded by the handler: uv's lock file, console scripts, test suites,
# and LiteRT's WebGPU accelerator (Lambda has no GPU).
# Never imported at run time: tests, tools, a GPU accelerator, and simdjson's C++ sources (7.6 MB).
PRUNE = (
    ".lock", "bin", "numpy/**/tests", "ml_dtypes/tests", "ai_edge_litert/libLiteRtWebGpuAccelerator.so",
    "simdjson/*.cpp", "simdjson/*.h", "simdjson/*.pyx", "simdjson/*.pxd",
)  # fmt: skip
ZIP_LIMIT = 50 * 1024 * 1024  # the largest zip Lambda takes by direct upload
UNZIPPED_LIMIT = 250 * 1024 * 1024  # Lambda's limit for the function and its layers, unzipped
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
LAMBDA_TASK_ROOT = "/var/task"


class PackageError(RuntimeError):
    """The zip cannot be built as asked; the message names the input or limit at fault."""


class OverLimit(PackageError):
    """The zip would pass one of Lambda's size limits: the function takes the image instead."""


@dataclass(frozen=True)
class Package:
    path: Path
    sha256: str
    zipped_bytes: int
    unzipped_bytes: int
    bytecode: bool
    reused: bool = False  # the zip already there was built from the same inputs


def install_dependencies(target: Path, arch: str, python_version: str) -> None:
    """Wheels only, for the target platform and Python, exactly the lock (hashes, no resolution)."""
    command = [
        sys.executable, "-m", "uv", "pip", "install", "--quiet", "--target", str(target),
        "--python-platform", PLATFORMS[arch], "--python-version", python_version,
        "--only-binary", ":all:", "--require-hashes", "--no-deps", "--link-mode", "copy",
        "-r", str(REQUIREMENTS),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PackageError(
            f"installing {REQUIREMENTS.name} for {arch}/python{python_version} failed:\n{result.stderr}"
        )
    for pattern in PRUNE:
        for path in target.glob(pattern):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    _forget_pruned(target)


def _forget_pruned(target: Path) -> None:
    """Each wheel's RECORD lists only what ships. A console script's line carries the hash of a file that
    starts with the building interpreter's path, so keeping it would make the zip depend on where the
    virtualenv lives (a fork's laptop and its runner would build different bytes)."""
    for record in target.glob("*.dist-info/RECORD"):
        lines = record.read_text().splitlines(keepends=True)
        rows = csv.reader(lines)
        kept = [line for line, row in zip(lines, rows, strict=True) if (target / row[0]).is_file()]
        if kept != lines:
            record.write_text("".join(kept))


def handler_modules(serving: Path = SERVING) -> tuple[str, ...]:
    """The handler's import closure among serving's top-level modules, read from their import
    statements: the route table, the codecs, the runtime, never the web server. A module the handler
    comes to import ships with no list to keep; an import of anything that does not ship is refused."""
    found: set[str] = {"__init__"}
    queue = [HANDLER_MODULE]
    while queue:
        module = queue.pop()
        if module in found:
            continue
        found.add(module)
        for name in _serving_imports(serving / f"{module}.py"):
            if not (serving / f"{name}.py").is_file():
                raise PackageError(f"serving/{module}.py imports serving.{name}, not a module that ships")
            queue.append(name)
    return tuple(sorted(found))


def _serving_imports(source: Path) -> Iterator[str]:
    """The `serving.<name>` every import statement of `source` names (functions' own imports too)."""
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.ImportFrom) and node.module == "serving":
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("serving."):
            yield node.module.split(".")[1]  # type: ignore[union-attr]
        elif isinstance(node, ast.Import):
            yield from (a.name.split(".")[1] for a in node.names if a.name.startswith("serving."))


def copy_code(target: Path) -> None:
    (target / "serving").mkdir()
    for module in handler_modules():
        shutil.copyfile(SERVING / f"{module}.py", target / "serving" / f"{module}.py")


def copy_model(version_dir: Path, target: Path) -> None:
    """`<name>/<version>/` under serving/models, where the handler looks when no setting says otherwise."""
    destination = target / "serving" / "models" / version_dir.parent.name / version_dir.name
    destination.mkdir(parents=True)
    for name in MODEL_FILES:
        source = version_dir / name
        if not source.is_file():
            raise PackageError(f"{source} is missing: run `make model` first")
        shutil.copyfile(source, destination / name)


def find_interpreter(python_version: str) -> str | None:
    """`python3.X` on PATH, if it runs and is that version (a pyenv shim may exist and refuse)."""
    candidate = shutil.which(f"python{python_version}")
    if candidate is None:
        return None
    probe = [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]
    result = subprocess.run(probe, capture_output=True, text=True, check=False)
    return candidate if result.returncode == 0 and result.stdout.strip() == python_version else None


def compile_bytecode(target: Path, python_version: str) -> bool:
    """Bytecode spares every cold start the compile; it needs an interpreter of the target version."""
    interpreter = find_interpreter(python_version)
    if interpreter is None:
        print(
            f"warning: no working python{python_version} on PATH: the zip carries no bytecode",
            file=sys.stderr,
        )
        return False
    subprocess.run(
        [interpreter, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash",
         "-s", str(target), "-p", LAMBDA_TASK_ROOT, str(target)],
        check=True,
    )  # fmt: skip
    return True


def write_zip(source: Path, path: Path) -> int:
    """Sorted entries, fixed timestamp and modes: the same tree always gives the same bytes."""
    unzipped = 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        files = {p.relative_to(source).as_posix(): p for p in source.rglob("*") if p.is_file()}
        for name, file in sorted(files.items()):
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            data = file.read_bytes()
            unzipped += len(data)
            archive.writestr(info, data, compresslevel=9)
    return unzipped


def check_limits(path: Path, unzipped: int) -> None:
    zipped = path.stat().st_size
    if unzipped > UNZIPPED_LIMIT:
        raise OverLimit(f"{path.name} unzips to {unzipped / 2**20:.1f} MiB, over Lambda's 250 MiB limit")
    if zipped > ZIP_LIMIT:
        raise OverLimit(
            f"{path.name} is {zipped / 2**20:.1f} MiB zipped, over the 50 MiB direct-upload limit"
        )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"


def inputs_digest(version_dir: Path, arch: str, python_version: str) -> str:
    """Everything the zip's bytes follow from: target, lock, handler code, model, and this builder."""
    parts = [("arch", arch), ("python", python_version), ("lock", _sha256(REQUIREMENTS))]
    parts += [
        ("bytecode", str(find_interpreter(python_version) is not None)),
        ("builder", _sha256(Path(__file__))),
    ]
    parts += [(f"serving/{m}.py", _sha256(SERVING / f"{m}.py")) for m in handler_modules()]
    parts += [(f"model/{n}", _sha256(version_dir / n)) for n in MODEL_FILES]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def _reuse(path: Path, digest: str) -> Package | None:
    """The zip already built from these inputs, if it is there and intact: nothing is rebuilt."""
    stamp, recorded = path.with_name(path.name + ".inputs"), path.with_name(path.name + ".sha256")
    if not (path.is_file() and stamp.is_file() and recorded.is_file()) or stamp.read_text().strip() != digest:
        return None
    actual = _sha256(path)
    if recorded.read_text().split()[0] != actual:
        return None
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
    bytecode = any(i.filename.endswith(".pyc") for i in infos)
    return Package(path, actual, path.stat().st_size, sum(i.file_size for i in infos), bytecode, reused=True)


def build(version_dir: Path, arch: str, python_version: str, out_dir: Path, staging: Path) -> Package:
    """Stage the tree, zip it, check the limits, and write `<zip>.sha256` and `<zip>.inputs` beside it;
    a zip already built from the same inputs is kept as it is."""
    if arch not in PLATFORMS:
        raise PackageError(f"unknown architecture {arch!r}; choose from {sorted(PLATFORMS)}")
    path = out_dir / f"lambda-{arch}.zip"
    digest = inputs_digest(version_dir, arch, python_version)
    if (reused := _reuse(path, digest)) is not None:
        return reused
    install_dependencies(staging, arch, python_version)
    copy_code(staging)
    copy_model(version_dir, staging)
    bytecode = compile_bytecode(staging, python_version)
    out_dir.mkdir(parents=True, exist_ok=True)
    unzipped = write_zip(staging, path)
    try:
        check_limits(path, unzipped)
    except PackageError:
        path.unlink()
        raise
    zip_sha256 = _sha256(path)
    path.with_name(path.name + ".sha256").write_text(f"{zip_sha256}  {path.name}\n")
    path.with_name(path.name + ".inputs").write_text(digest + "\n")
    return Package(path, zip_sha256, path.stat().st_size, unzipped, bytecode)
