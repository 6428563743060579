"""The deploy driver's one error base: whatever stops a step is a DeliveryError naming what failed,
so the rollout catches one type and rolls back."""

from __future__ import annotations


class DeliveryError(RuntimeError):
    """A deploy step failed; the message names the runtime, the step and what it saw."""


class RolloutError(DeliveryError):
    """An up failed, or a signal breached its threshold during a bake."""


class StackLocked(RolloutError):
    """Another update holds the stack's lock."""


class SmokeError(DeliveryError):
    """A deployed runtime failed a check: not ready, the wrong version, or the example's wrong answer."""


class MetricsError(DeliveryError):
    """The metrics endpoint did not answer, or answered something that is not Prometheus text."""


class Unreachable(DeliveryError):
    """A runtime could not be reached from this runner: a port-forward that exits or never listens,
    or an IAM endpoint with no credentials to sign for it."""
