"""A rollout's ups and outputs of its stack, through the one engine runner (`infra/engine.py`) in this
process, so a cancel reaches the CLI; and the abort's patience with a cancelled update's lock."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import engine

from delivery.errors import RolloutError, StackLocked
from delivery.interrupt import Cancellation, live_updates

LOCK_PATIENCE_SECONDS = 60.0  # how long a cancelled run's CLI may take to release the stack


@dataclass
class StackUpdates:
    """The stack's ups and outputs, in this process; each step's inputs over the job's config."""

    stack: str
    job_config: dict[str, str] = field(default_factory=dict)
    secrets_provider: str | None = None
    cancellation: Cancellation = field(default_factory=Cancellation)
    lock_patience_seconds: float = LOCK_PATIENCE_SECONDS
    _opened: Any = None

    @classmethod
    def from_env(cls, stack: str, cancellation: Cancellation, lock_patience_seconds: float) -> StackUpdates:
        try:
            job = engine.deploy_config(dict(os.environ))
        except engine.EngineError as error:
            raise RolloutError(str(error)) from None
        return cls(
            stack, job, os.environ.get("PULUMI_SECRETS_PROVIDER") or None, cancellation, lock_patience_seconds
        )

    def _open(self) -> Any:
        if self._opened is None:
            try:
                self._opened = engine.open_stack(
                    self.stack, create=True, secrets_provider=self.secrets_provider
                )
            except engine.EngineError as error:
                raise RolloutError(f"could not open stack {self.stack}: {error}") from None
        return self._opened

    def outputs(self) -> dict[str, Any]:
        try:
            return engine.outputs(self._open())
        except engine.EngineError as error:
            self.cancellation.check()
            raise RolloutError(f"could not read the outputs of stack {self.stack}: {error}") from None

    def up(self, inputs: dict[str, str]) -> dict[str, Any]:
        """One up with a step's inputs (image included) over the job's config; its outputs."""
        stack = self._open()
        try:
            engine.set_config(stack, [f"{k}={v}" for k, v in {**self.job_config, **inputs}.items()])
            engine.run("up", stack)
        except engine.EngineError as error:
            self.cancellation.check()  # the job was cancelled: that, not a failure to roll back from
            kind = StackLocked if isinstance(error, engine.LockedError) else RolloutError
            raise kind(f"the up failed: {error}") from None
        self.cancellation.check()
        return self.outputs()

    def up_after_cancel(self, inputs: dict[str, str]) -> dict[str, Any]:
        """The abort's up. A cancelled run's CLI may still be winding down on this runner: wait for it
        (never clear a lock a live process holds); a lock no live process holds is a killed CLI's,
        cleared once (`pulumi cancel`). Safe because the workflow runs one deploy per stack at a time."""
        deadline = time.monotonic() + self.lock_patience_seconds
        cleared = False
        while True:
            try:
                return self.up(inputs)
            except StackLocked:
                pass
            live = live_updates(self.stack)
            if live:
                if time.monotonic() > deadline:
                    raise RolloutError(
                        f"an update of {self.stack} is still running here (pulumi {live}) after "
                        f"{self.lock_patience_seconds:g} s; its lock is left alone"
                    ) from None
                print(f"waiting for the cancelled update to finish (pulumi {live})", flush=True)
            elif not cleared:
                print(
                    "the stack's lock is held by no running update: clearing it (pulumi cancel)", flush=True
                )
                engine.clear_lock(self._open())
                cleared = True
            else:
                raise RolloutError(f"the stack {self.stack} is locked by another update") from None
            time.sleep(min(2.0, self.lock_patience_seconds))

    def pending_creates(self) -> list[dict[str, Any]]:
        return [op for op in engine.pending_operations(self._open()) if op.get("type") == "creating"]

    def clear_pending_creates(self) -> None:
        engine.clear_pending_creates(self._open())
