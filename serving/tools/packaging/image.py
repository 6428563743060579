"""What serving/Dockerfile's final stage holds, recreated without Docker: its venv, its files, its command.

The tests start both entrypoints from it, and the benchmarks time and weigh it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
DOCKERFILE = REPO / "serving" / "Dockerfile"
# The function's image config (infra sets the same): the runtime interface client calling the handler.
LAMBDA_COMMAND = ("python", "-m", "awslambdaric", "serving.lambda_handler.handler")


@dataclass(frozen=True)
class Image:
    venv: Path
    app: Path
    runtime: str
    cmd: tuple[str, ...]

    @property
    def path(self) -> str:
        return f"{self.venv / 'bin'}:/usr/bin:/bin"

    def installed_bytes(self) -> int:
        """What the image adds to its base: the venv and /app."""
        files = (
            p for top in (self.venv, self.app) for p in top.rglob("*") if p.is_file() and not p.is_symlink()
        )
        return sum(p.stat().st_size for p in files)


def dockerfile() -> str:
    return DOCKERFILE.read_text()


def arg_default(name: str) -> str:
    return re.search(rf"^ARG {name}=(\S+)$", dockerfile(), re.MULTILINE).group(1)  # type: ignore[union-attr]


def install_command() -> tuple[list[str], list[Path]]:
    """The build stage's pip flags and requirement files, with ARG RUNTIME at its default."""
    run = re.search(r"pip install (.*?)(?:\n\n|\nFROM)", dockerfile(), re.DOTALL).group(1)  # type: ignore[union-attr]
    words = run.replace("\\\n", " ").replace("${RUNTIME}", arg_default("RUNTIME")).split()
    files = [REPO / "serving" / Path(w).name for w in words if w.startswith("/tmp/requirements/")]  # noqa: S108 - a path in the build stage
    flags = [w for w in words if w.startswith("--")]
    return flags, files


def build(root: Path) -> Image:
    """A fresh venv with exactly the build stage's requirements, and /app as the final stage copies it."""
    venv, app = root / "venv", root / "app"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    flags, files = install_command()
    requirements = [arg for f in files for arg in ("-r", str(f))]
    subprocess.run(
        [sys.executable, "-m", "uv", "pip", "install", "-q", "--python", str(venv / "bin" / "python"),
         *flags, *requirements],
        check=True,
    )  # fmt: skip
    (app / "serving").mkdir(parents=True)
    for module in (REPO / "serving").glob("*.py"):
        shutil.copy(module, app / "serving")
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile(), re.MULTILINE).group(1)  # type: ignore[union-attr]
    return Image(venv, app, arg_default("RUNTIME"), tuple(json.loads(cmd)))


def bake_model(image: Image, artifact: Path) -> None:
    """COPY build/models/<name>/<version>/ serving/models/<name>/<version>/."""
    shutil.copytree(artifact, image.app / "serving" / "models" / artifact.parent.name / artifact.name)
