"""How a rollout reaches its stack and its pods: ups through the deploy's own `up-stack.sh`, outputs
through the CLI, and the new model's servers through `kubectl port-forward` (or a given URL)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smoke import port_forward

ROOT = Path(__file__).resolve().parent.parent
UP = ROOT / ".github" / "scripts" / "up-stack.sh"
CONTAINER_PORT = 8080  # kubernetes_service.PORT, without importing the Pulumi program's modules
LOCK_PATIENCE_SECONDS = 60.0  # how long a cancelled run's up may take to release the stack


class RolloutError(RuntimeError):
    """A step failed: an up, a smoke test or a breached signal; the message says which."""


@dataclass
class Engine:
    """The stack's ups (the deploy's own up-stack.sh) and outputs (the CLI)."""

    stack: str
    image: str
    lock_patience_seconds: float = LOCK_PATIENCE_SECONDS

    def outputs(self) -> dict[str, Any]:
        result = subprocess.run(
            ["pulumi", "stack", "output", "--json", "--stack", self.stack],
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
        )
        if result.returncode != 0:
            if "no stack named" in result.stderr:
                return {}
            raise RolloutError(f"could not read the outputs of stack {self.stack}: {result.stderr.strip()}")
        return json.loads(result.stdout or "{}")

    def up(self, inputs: dict[str, str], after_cancel: bool = False) -> dict[str, Any]:
        """One up with a step's inputs. `after_cancel`: the up of a cancelled run may still be winding
        down, or have died holding the stack's lock; wait for it, then clear a lock it left. Safe only
        because the workflow runs one deploy per stack at a time (its concurrency group)."""
        command = [str(UP), self.stack, self.image]
        for key, value in inputs.items():
            command += ["--config", f"{key}={value}"]
        deadline = time.monotonic() + self.lock_patience_seconds
        while True:
            code, output = _streamed(command)
            if code == 0:
                return self.outputs()
            if not (after_cancel and "currently locked" in output):
                raise RolloutError("the up failed (its output is above)")
            if time.monotonic() > deadline:
                print(
                    f"the lock outlived the cancelled up by {self.lock_patience_seconds:g} s: clearing it",
                    flush=True,
                )
                subprocess.run(["pulumi", "cancel", "--yes", "--stack", self.stack], cwd=ROOT, check=False)
                after_cancel = False  # one clearing; a lock that comes back is someone else's
            time.sleep(min(5.0, self.lock_patience_seconds))


def _streamed(command: list[str]) -> tuple[int, str]:
    """Run, printing the output as it comes, and keep it for the caller to read."""
    lines = []
    with subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as run:
        assert run.stdout is not None
        for line in run.stdout:
            print(line, end="", flush=True)
            lines.append(line)
    return run.returncode, "".join(lines)


@dataclass(frozen=True)
class Targets:
    """Where the new model's servers are reached from this runner."""

    kubernetes_url: str | None = None  # instead of a port-forward to the stable pods
    kubernetes_canary_url: str | None = None  # instead of a port-forward to the canary pods

    @contextlib.contextmanager
    def kubernetes(self, outputs: dict[str, Any], canary: bool) -> Iterator[str]:
        given = self.kubernetes_canary_url if canary else self.kubernetes_url
        if given:
            yield given.rstrip("/")
            return
        target = f"deployment/{outputs['kubernetesCanary']}" if canary else f"svc/{outputs['modelName']}"
        with port_forward(outputs["kubernetesNamespace"], target, CONTAINER_PORT if canary else 80) as base:
            yield base
