"""A rollout step's bake: the new model's SLO signals on both runtimes, polled until the bake ends or
one breaches.

- Kubernetes: a canary pod's own `/metrics` (or a stable pod's after an all-at-once up), judged
  by `analysis.judge` over everything since the step began: error ratio, throttle ratio, p99, and,
  during a canary step, the prediction mix against a stable pod's over the same time and, when the
  stable pods mirror to the new model, the shadow's disagreement they counted.
- Lambda: the states of the stack's CloudWatch alarms, the canary's (its `ExecutedVersion` behind the
  live alias) during a canary step, the shadow alias's during a shadow phase, the live alias's after
  an all-at-once up. Any alarm in ALARM is a breach, named with CloudWatch's own reason. During a
  canary step, the new version's prediction mix against the stable version's too (`lambda_mix.py`).

The first breach ends the watch; the timeline keeps every poll's figures for the job summary. The
one bake loop: the rollout's steps and the canary CLI (`canary.py`) both run it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from delivery.analysis import (
    Breach,
    MixShift,
    Snapshot,
    Thresholds,
    Window,
    judge,
    mix_breach,
    mix_shift,
    window,
)


@dataclass(frozen=True)
class Poll:
    """One look at both runtimes, `seconds` after the step's bake began."""

    seconds: float
    kubernetes: Window | None
    alarms: dict[str, str]  # alarm name -> state
    kubernetes_breaches: list[Breach]
    alarm_breaches: list[str]
    mix: MixShift | None = None  # the new model's prediction mix against the stable one's
    stable: Window | None = None  # a stable pod's window: its mirrors' disagreement
    lambda_mix: MixShift | None = None  # the new Lambda version's mix against the stable version's

    @property
    def breaches(self) -> list[str]:
        return [f"kubernetes {b}" for b in self.kubernetes_breaches] + [
            f"lambda {b}" for b in self.alarm_breaches
        ]


@dataclass
class Watch:
    polls: list[Poll] = field(default_factory=list)

    @property
    def breaches(self) -> list[str]:
        return self.polls[-1].breaches if self.polls else []


def alarm_breaches(cloudwatch: object, names: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """Each alarm's state, and a breach per alarm in ALARM (with CloudWatch's reason). An alarm the
    stack declared but CloudWatch does not know is a breach too: nothing would be watching."""
    if not names:
        return {}, []
    found = {}
    paginator = cloudwatch.get_paginator("describe_alarms")  # type: ignore[attr-defined]
    for page in paginator.paginate(AlarmNames=list(names), AlarmTypes=["MetricAlarm"]):
        for alarm in page["MetricAlarms"]:
            found[alarm["AlarmName"]] = alarm
    states = {name: found[name]["StateValue"] if name in found else "MISSING" for name in names}
    breaches = [
        f"alarm {name} is in ALARM: {found[name].get('StateReason', '')}".rstrip(": ")
        for name in names
        if states[name] == "ALARM"
    ]
    breaches += [f"alarm {name} does not exist in CloudWatch" for name in names if states[name] == "MISSING"]
    return states, breaches


def watch(
    seconds: float,
    interval: float,
    thresholds: Thresholds,
    scrape: Callable[[], Snapshot] | None,
    alarms: Callable[[], tuple[dict[str, str], list[str]]] | None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    stable: Callable[[], Snapshot] | None = None,
    lambda_mix: Callable[[], MixShift | None] | None = None,
) -> Watch:
    """Poll every `interval` until `seconds` have passed or a signal breaches; at least one poll.
    `stable` scrapes a stable pod, whose prediction mix the new model's is held against, and whose
    mirrors count how often the new model (as its shadow) disagreed; `lambda_mix` looks at the new
    Lambda version's mix against the stable version's."""
    start = clock()
    first = scrape() if scrape else None
    first_stable = stable() if stable and scrape else None
    result = Watch()
    while True:
        sleep(min(interval, max(seconds - (clock() - start), 0)))
        elapsed = clock() - start
        seen = window(first, scrape()) if scrape and first is not None else None
        seen_stable = window(first_stable, stable()) if stable and first_stable is not None else None
        states, alarm_problems = alarms() if alarms else ({}, [])
        breaches = judge(seen, thresholds, seen_stable) if seen else []
        shift = mix_shift(seen, seen_stable, thresholds.min_requests) if seen and seen_stable else None
        function_shift = lambda_mix() if lambda_mix else None
        moved = mix_breach(function_shift, thresholds.slo)
        if moved is not None:
            alarm_problems = [*alarm_problems, str(moved)]
        poll = Poll(elapsed, seen, states, breaches, alarm_problems, shift, seen_stable, function_shift)
        result.polls.append(poll)
        if poll.breaches or elapsed >= seconds:
            return result


def judged(
    seen: Window | None, thresholds: Thresholds, shift: MixShift | None = None, stable: Window | None = None
) -> str:
    """How a Kubernetes window reads in the summary."""
    if seen is None:
        return "-"
    p99 = "-" if seen.p99_seconds is None else f"{seen.p99_seconds * 1000:.1f} ms"
    note = "" if seen.requests >= thresholds.min_requests else f" (not judged: < {thresholds.min_requests})"
    return (
        f"{seen.requests:.0f} requests{note}, errors {seen.error_ratio:.4f}, "
        f"throttled {seen.throttle_ratio:.4f}, p99 {p99}{mixed(shift)}{disagreed(stable)}"
    )


def disagreed(stable: Window | None) -> str:
    """The shadow's part of a summary line: the share of mirrored rows whose top class it changed."""
    if stable is None or stable.disagreement is None:
        return ""
    return f", shadow disagreement {stable.disagreement:.4f} of {sum(stable.shadow_rows.values()):.0f} rows"


def mixed(shift: MixShift | None) -> str:
    """The prediction mix's part of a summary line: its PSI against stable and what moved."""
    if shift is None:
        return ""
    if shift.psi is None:
        return f", mix not judged (< {shift.rows_needed} rows a side)"
    return f", mix PSI {shift.psi:.3f} ({shift.moved()})"
