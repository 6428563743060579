"""One environment's deploy, step by step: `python infra/delivery/rollout.py --stack S --env E --image I`.

The environment's `rollout*` settings choose the steps (the new model's share of traffic):

- first, with rolloutShadowMinutes, a shadow phase on Kubernetes: the new model's shadow pods answer
  rolloutShadowPercent of the stable pods' requests, mirrored by them after answering, and never a
  client; baked that long on the stable pods' count of top classes it changed (alarmMaxDisagreement)
  and on its own errors and latency;
- all-at-once: one up at 100%, then a bake watched by the live signals;
- canary: rolloutStepPercent for a bake, then 100%;
- linear: rolloutStepPercent, twice that, … each baked, then 100%.

Each step below 100% is an up of the same program with the stable side pinned to what the stack ran
before (its outputs): Kubernetes keeps `image` and runs the new one as `canaryImage`
(kubernetesCanaryReplicas pods from the share); Lambda keeps `live` on lambdaStableVersion and routes
lambdaCanaryPercent to the newly published version. Then the new model alone is smoke-tested (the
canary pods, the canary alias's URL) and baked: its Prometheus metrics and its CloudWatch alarms.
A failed smoke test, a breached signal or a failed up rolls both runtimes back in one up (the canary
discarded, `live` pinned to the stable version) and exits 1 with the reason named. A clean last step
promotes: `image` becomes the new one and `live` follows it. `--summary` appends the timeline.
Exit 0 deployed, 1 rolled back, 2 failed with nothing to roll back to (or the rollback failed too),
130 cancelled: a SIGINT or SIGTERM (the runner's cancel) interrupts the running update as Pulumi
expects and stops the rollout where it stands, within the runner's 10 s (infra/delivery/interrupt.py).

`--strategy all-at-once` skips the shadow phase and the canary for one deploy (a by-hand "promote
now"); `abort` puts the stack back on the stable side its outputs recorded (after a cancelled run),
waiting for a cancelled update still winding down, and deletes by name any canary or shadow object
an interrupted update created without recording it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from program.settings import Settings, SettingsError, read_environment

from delivery.analysis import MIN_SHADOW_ROWS, Thresholds, scraper
from delivery.canary_cleanup import remove_canaries
from delivery.errors import DeliveryError, RolloutError
from delivery.interrupt import Cancellation, Interrupted
from delivery.lambda_mix import lambda_mix
from delivery.rollout_plan import SHADOW, Plan, Running
from delivery.shadow_evidence import differing_rows
from delivery.smoke import Example, check, smoke
from delivery.stack_updates import LOCK_PATIENCE_SECONDS, StackUpdates
from delivery.targets import Send, Targets, plain_send, region_of
from delivery.watch import Watch, alarm_breaches, judged, mixed, watch

ROOT = Path(__file__).resolve().parents[2]  # the repository

DEPLOYED, ROLLED_BACK, FAILED, CANCELLED = 0, 1, 2, 130


@dataclass
class Timeline:
    lines: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        print(line, flush=True)
        self.lines.append(line)

    def polls(self, result: Watch, thresholds: Thresholds) -> None:
        for poll in result.polls:
            unhealthy = [f"{name} {state}" for name, state in poll.alarms.items() if state != "OK"]
            states = (", ".join(unhealthy) or (f"{len(poll.alarms)} OK" if poll.alarms else "-")) + mixed(
                poll.lambda_mix
            )
            kubernetes = judged(poll.kubernetes, thresholds, poll.mix, poll.stable)
            self.add(
                f"| {poll.seconds:.1f} s | {kubernetes} | {states} | {'; '.join(poll.breaches) or '-'} |"
            )


@dataclass
class Rollout:
    plan: Plan
    updates: StackUpdates
    example: Example
    targets: Targets
    bake_seconds: float
    interval: float
    wait_seconds: float = 180
    timeline: Timeline = field(default_factory=Timeline)
    shadow_seconds: float | None = None  # the shadow phase's bake; None: rolloutShadowMinutes

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds.of(self.plan.settings)

    def run(self) -> int:
        plan = self.plan
        model = plan.settings.model_name
        self.timeline.add(f"### {plan.settings.stack}: {plan.strategy} rollout of {model}")
        self.timeline.add("")
        self.timeline.add(f"Steps: {', '.join(plan.label(p) for p in plan.steps)}. {self._slo()}")
        try:
            for percent in plan.steps:
                self.timeline.add("")
                self.timeline.add(f"**Step {plan.describe(percent)}**")
                outputs = self.updates.up(plan.inputs(percent))
                track = "shadow" if percent == SHADOW else "canary" if percent < 100 else "stable"
                self._smoke(outputs, track)
                if percent < 100 or plan.strategy == "all-at-once":
                    self._bake(outputs, track)
        except (DeliveryError, OSError) as error:
            return self._roll_back(str(error))
        self.timeline.add("")
        self.timeline.add(f"**Deployed**: {model} serves all traffic from {plan.image}.")
        return DEPLOYED

    def _slo(self) -> str:
        t = self.thresholds
        shadow = (
            f"; the shadow baked {self._shadow_seconds:.0f} s, failed above {t.slo.max_disagreement:g} "
            "of its top classes changed"
            if SHADOW in self.plan.steps
            else ""
        )
        return (
            f"SLO: error ratio ≤ {t.slo.error_ratio:g}, throttle ratio ≤ {t.slo.throttle_ratio:g}, "
            f"p99 ≤ {t.slo.p99_ms:g} ms; each step baked {self.bake_seconds:.0f} s{shadow}."
        )

    @property
    def _shadow_seconds(self) -> float:
        minutes = self.plan.settings.rollout.shadow_minutes
        return minutes * 60 if self.shadow_seconds is None else self.shadow_seconds

    def _check(self, runtime: str, base: str, send: Send = plain_send) -> None:
        self.timeline.add(f"- smoke: {check(runtime, base, self.example, send, self.wait_seconds)}")

    def _smoke(self, outputs: dict[str, Any], track: str) -> None:
        """The new model alone: its shadow pods, its canary pods and canary alias during a step,
        everything at 100%."""
        if track == "shadow":  # Lambda's shadow alias has no URL: its alarms judge it
            if outputs.get("kubernetesShadow"):
                with self.targets.kubernetes(outputs, "shadow") as base:
                    self._check("kubernetes shadow", base)
            return
        if track == "canary":
            if outputs.get("kubernetesCanary"):
                with self.targets.kubernetes(outputs, "canary") as base:
                    self._check("kubernetes canary", base)
            if outputs.get("lambdaCanaryEndpoint"):
                self._check("lambda canary", *self.targets.function(outputs, canary=True))
            return
        for line in smoke(outputs, self.example, self.wait_seconds, self.targets):
            self.timeline.add(f"- smoke: {line}")

    def _bake(self, outputs: dict[str, Any], track: str) -> None:
        """The new model's signals for the step's bake: a shadow's and a canary's pods against a stable
        pod's (its mirrors' verdicts, its prediction mix), the canary's or live alarms on Lambda."""
        shadow = track == "shadow"
        seconds = self._shadow_seconds if shadow else self.bake_seconds
        if seconds <= 0:
            self.timeline.add(
                f"- bake: none ({'rolloutShadowMinutes' if shadow else 'rolloutBakeMinutes'} is 0)"
            )
            return
        alarms, function_mix = self._lambda_signals(outputs, track)
        with contextlib.ExitStack() as stack:
            scrape, stable = None, None
            if "kubernetes" in outputs.get("runtimes", []) and (
                track == "stable" or outputs.get(f"kubernetes{track.capitalize()}")
            ):
                metrics_url = stack.enter_context(self.targets.metrics(outputs, track))
                scrape = scraper(metrics_url, outputs["modelName"])
                if track != "stable":  # the mix and the mirrors' verdicts, from a stable pod
                    stable_url = stack.enter_context(self.targets.metrics(outputs, "stable"))
                    stable = scraper(stable_url, outputs["modelName"])
            self.timeline.add("")
            self.timeline.add("| after | Kubernetes | Lambda alarms | breach |")
            self.timeline.add("|---:|---|---|---|")
            result = watch(
                seconds,
                self.interval,
                self.thresholds,
                scrape,
                alarms,
                stable=stable,
                lambda_mix=function_mix,
            )
            self.timeline.polls(result, self.thresholds)
        if shadow and stable is not None:  # Lambda's verdict is its disagreement alarm's
            self._shadow_outcome(outputs, result)
        if result.breaches:
            raise RolloutError("; ".join(result.breaches))

    def _lambda_signals(self, outputs: dict[str, Any], track: str) -> tuple[Any, Any]:
        """The track's CloudWatch alarms, and during a canary step the new version's prediction mix."""
        key = {"canary": "lambdaCanaryAlarms", "shadow": "lambdaShadowAlarms"}.get(track, "lambdaAlarms")
        alarm_names = outputs.get(key) or []
        if not alarm_names:
            return None, None
        import boto3

        cloudwatch = boto3.client("cloudwatch", region_name=region_of(outputs))
        function_mix = None
        if track == "canary" and self.plan.running.lambda_version:
            function_mix = lambda_mix(
                cloudwatch,
                outputs["functionName"],
                self.plan.running.lambda_version,
                str(outputs["lambdaVersion"]),
                self.thresholds.min_requests,
            )
        return (lambda: alarm_breaches(cloudwatch, alarm_names)), function_mix

    def _shadow_outcome(self, outputs: dict[str, Any], result: Watch) -> None:
        """A failed shadow's evidence, or a passed one's agreement."""
        if result.breaches:
            self._differing(outputs)
        else:
            self.timeline.add(f"- shadow: {shadow_verdict(result)}")

    def _differing(self, outputs: dict[str, Any]) -> None:
        """What moved, for the summary: the golden set through the Service and the shadow pods."""
        rows = self.example.golden.rows
        try:
            with (
                self.targets.kubernetes(outputs) as stable,
                self.targets.kubernetes(outputs, "shadow") as new,
            ):
                found = differing_rows(self.example, stable, new, plain_send)
        except (DeliveryError, OSError, ValueError) as error:
            self.timeline.add(f"- the golden set could not be compared on both sides: {error}")
            return
        said = "; ".join(found) or "none (the failure is in the traffic's rows alone)"
        self.timeline.add(
            f"- golden rows answered otherwise (of {rows}; no client's request is logged): {said}"
        )

    def _roll_back(self, reason: str) -> int:
        seen = time.monotonic()
        self.timeline.add("")
        self.timeline.add(f"**Failed**: {reason}")
        if self.plan.running.nothing:
            self.timeline.add("Nothing to roll back to: this stack ran no earlier model.")
            return FAILED
        try:
            self.updates.up(self.plan.rollback_inputs())
        except RolloutError as error:
            self.timeline.add(
                f"**The rollback failed too**: {error}. Run the deploy workflow with an earlier ref."
            )
            return FAILED
        seconds = time.monotonic() - seen
        self.timeline.add(
            f"**Rolled back** {seconds:.0f} s after the failure was seen; all traffic on the stable model: "
            f"{self.plan.stable_side()}."
        )
        return ROLLED_BACK


def shadow_verdict(result: Watch) -> str:
    """What a shadow phase that breached nothing showed: the agreement it was judged on, or why none."""
    last = result.polls[-1].stable if result.polls else None
    rows = sum(last.shadow_rows.values()) if last else 0
    if last is None or last.disagreement is None:
        return "no mirrored rows compared by class (no classes, or no traffic): judged on errors and latency"
    if rows < MIN_SHADOW_ROWS:
        return f"not judged on agreement: {rows:.0f} mirrored rows compared (< {MIN_SHADOW_ROWS})"
    return f"top classes agreed on {1 - last.disagreement:.2%} of {rows:.0f} mirrored rows"


def abort(updates: StackUpdates, settings: Settings, image: str, timeline: Timeline) -> int:
    """Put the stack back on the stable side its outputs recorded, whatever a cancelled run left: its
    outputs are written when an up completes, so an up interrupted midway may have created a canary
    they do not mention, and one terminated mid-create a canary its state does not hold (a pending
    create, which the engine never deletes). One up, then those deleted by name and the pending
    creates cleared; a no-op when nothing was left running."""
    outputs = updates.outputs()
    running = Running.of(outputs)
    if running.nothing:
        timeline.add(f"{settings.stack}: no model was deployed before; nothing to go back to.")
        return DEPLOYED
    plan = Plan(settings, running, running.image or image, "canary")
    pending = updates.pending_creates()  # read before the up, which may drop them from the state
    outputs = updates.up_after_cancel(plan.rollback_inputs())
    for line in remove_canaries(outputs, pending):
        timeline.add(f"- deleted {line}, left by the interrupted update")
    left = updates.pending_creates()
    if left:
        updates.clear_pending_creates()
        timeline.add(f"- cleared {len(left)} pending create(s) from the state")
    timeline.add(
        f"{settings.stack}: aborted; no canary runs, all traffic on the stable model: {plan.stable_side()}."
    )
    return DEPLOYED


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", nargs="?", choices=("run", "abort"), default="run")
    parser.add_argument("--stack", required=True, help="the stack, e.g. prod or org/prod")
    parser.add_argument("--env", required=True, help="the environment whose rollout* settings apply")
    parser.add_argument("--image", required=True, help="the new model image, by digest")
    parser.add_argument(
        "--strategy",
        choices=("settings", "all-at-once"),
        default="settings",
        help="all-at-once skips the shadow phase and the canary for this deploy",
    )
    parser.add_argument("--metadata", type=Path, default=ROOT / "dist" / "model-metadata.json")
    parser.add_argument("--bake-seconds", type=float, help="instead of rolloutBakeMinutes")
    parser.add_argument("--shadow-seconds", type=float, help="instead of rolloutShadowMinutes")
    parser.add_argument("--interval", type=float, default=15, help="seconds between looks at the signals")
    parser.add_argument(
        "--lock-patience-seconds",
        type=float,
        default=LOCK_PATIENCE_SECONDS,
        help="abort: how long to wait for a cancelled update still running here",
    )
    parser.add_argument(
        "--wait-seconds", type=float, default=180, help="how long new pods may take to be ready"
    )
    parser.add_argument("--kubernetes-url", help="the stable pods' base URL instead of a port-forward")
    parser.add_argument("--kubernetes-canary-url", help="the canary pods' base URL instead of a port-forward")
    parser.add_argument("--kubernetes-metrics-url", help="the stable pods' /metrics, not a port-forward")
    parser.add_argument(
        "--kubernetes-canary-metrics-url", help="the canary pods' /metrics, not a port-forward"
    )
    parser.add_argument("--kubernetes-shadow-url", help="the shadow pods' base URL instead of a port-forward")
    parser.add_argument(
        "--kubernetes-shadow-metrics-url", help="the shadow pods' /metrics, not a port-forward"
    )
    parser.add_argument("--summary", type=Path, help="append the timeline here (a job summary)")
    parser.add_argument("--outputs", type=Path, help="write the stack's outputs here as JSON at the end")
    args = parser.parse_args(argv)
    timeline = Timeline()
    cancellation = Cancellation().install()
    updates = None
    try:
        settings = read_environment(args.env)
        updates = StackUpdates.from_env(args.stack, cancellation, args.lock_patience_seconds)
        if args.command == "abort":
            return abort(updates, settings, args.image, timeline)
        strategy = settings.rollout.strategy if args.strategy == "settings" else args.strategy
        rollout = Rollout(
            Plan(settings, Running.of(updates.outputs()), args.image, strategy, args.strategy == "settings"),
            updates,
            Example.read(args.metadata),
            Targets(
                args.kubernetes_url,
                args.kubernetes_canary_url,
                args.kubernetes_metrics_url,
                args.kubernetes_canary_metrics_url,
                args.kubernetes_shadow_url,
                args.kubernetes_shadow_metrics_url,
            ),
            settings.rollout.bake_minutes * 60 if args.bake_seconds is None else args.bake_seconds,
            args.interval,
            args.wait_seconds,
            timeline,
            args.shadow_seconds,
        )
        return rollout.run()
    except Interrupted as stop:
        timeline.add("")
        timeline.add(f"**Stopped**: {stop}. The abort step returns the stack to its stable side.")
        return CANCELLED
    except (SettingsError, DeliveryError, OSError, ValueError) as error:
        timeline.add(f"error: {error}")
        return FAILED
    finally:
        if args.outputs and updates is not None and not cancellation.received:
            with contextlib.suppress(RolloutError):
                args.outputs.parent.mkdir(parents=True, exist_ok=True)
                args.outputs.write_text(json.dumps(updates.outputs()))
        if args.summary and timeline.lines:
            with args.summary.open("a") as summary:
                summary.write("\n".join(timeline.lines) + "\n")


if __name__ == "__main__":
    os.environ.setdefault("PULUMI_SKIP_UPDATE_CHECK", "true")
    sys.exit(main())
