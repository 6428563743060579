"""One environment's deploy, step by step: `python infra/rollout.py --stack S --env E --image I`.

The environment's `rollout*` settings choose the steps (the new model's share of traffic):

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
Exit 0 deployed, 1 rolled back, 2 failed with nothing to roll back to (or the rollback failed too).

`--strategy all-at-once` skips the canary for one deploy (a by-hand "promote now"); `abort` puts
the stack back on the stable side its outputs recorded (after a cancelled run).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from canary import MetricsError, Thresholds, scraper
from settings import Settings, SettingsError, read_environment
from smoke import Example, SmokeError, check, free_port, plain_send, signed_send, smoke
from watch import Watch, alarm_breaches, judged, watch

ROOT = Path(__file__).resolve().parent.parent
UP = ROOT / ".github" / "scripts" / "up-stack.sh"
DEPLOYED, ROLLED_BACK, FAILED = 0, 1, 2
LOCK_PATIENCE_SECONDS = 60.0  # how long a cancelled run's up may take to release the stack


class RolloutError(RuntimeError):
    """A step failed: an up, a smoke test or a breached signal; the message says which."""


@dataclass(frozen=True)
class Running:
    """What the stack served before this deploy (its outputs): the side a rollout keeps stable."""

    image: str | None
    lambda_version: str | None
    commit: str | None = None  # the commit of main it was deployed from

    @classmethod
    def of(cls, outputs: dict[str, Any]) -> Running:
        version = outputs.get("lambdaLiveVersion")
        return cls(
            outputs.get("image") or None, str(version) if version else None, outputs.get("commit") or None
        )


def shares(strategy: str, step: int) -> list[int]:
    """The new model's share at each step, ending at 100."""
    if strategy == "canary":
        return [step, 100]
    if strategy == "linear":
        return [*range(step, 100, step), 100]
    return [100]


def canary_pods(stable_pods: int, percent: int) -> int:
    """Pods giving the canary about `percent` of a Service's traffic beside `stable_pods`; at least one,
    so a small deployment's real share is higher than asked (the summary says how much)."""
    return max(1, round(stable_pods * percent / (100 - percent)))


@dataclass(frozen=True)
class Plan:
    """The inputs of each up: the new image, and the stable side from what the stack ran."""

    settings: Settings
    running: Running
    image: str
    strategy: str

    @property
    def kubernetes(self) -> bool:
        return "kubernetes" in self.settings.runtimes

    @property
    def lambda_(self) -> bool:
        return "lambda" in self.settings.runtimes

    @property
    def steps(self) -> list[int]:
        if self.running.image is None and self.running.lambda_version is None:
            return [100]  # a first deploy: nothing stable to keep
        return shares(self.strategy, self.settings.rollout_step_percent)

    @property
    def _no_canary(self) -> dict[str, str]:
        """What empties every canary input this stack has."""
        gateway = {"kubernetesCanaryPercent": "0"} if self.settings.kubernetes_gateway else {}
        return {"canaryImage": "", **gateway, "lambdaCanaryPercent": "0"}

    def inputs(self, percent: int) -> dict[str, str]:
        if percent == 100:
            return {"image": self.image, **self._no_canary, "lambdaStableVersion": ""}
        values = {"image": self.running.image or self.image, "canaryImage": "", "lambdaStableVersion": ""}
        if self.kubernetes and self.running.image and self.running.image != self.image:
            pods = canary_pods(self.settings.kubernetes_min_replicas, percent)
            values |= {"canaryImage": self.image, "kubernetesCanaryReplicas": str(pods)}
            if self.settings.kubernetes_gateway:
                values["kubernetesCanaryPercent"] = str(percent)
        if self.lambda_ and self.running.lambda_version:
            values |= {
                "lambdaStableVersion": self.running.lambda_version,
                "lambdaCanaryPercent": str(percent),
            }
        else:
            values["lambdaCanaryPercent"] = "0"
        return values

    def rollback_inputs(self) -> dict[str, str]:
        """The stable side again, and its commit: the stack records what it serves, not what failed."""
        commit = {"commit": self.running.commit} if self.running.commit else {}
        return {
            "image": self.running.image or self.image,
            **self._no_canary,
            "lambdaStableVersion": (self.running.lambda_version or "") if self.lambda_ else "",
            **commit,
        }

    def describe(self, percent: int) -> str:
        if percent == 100:
            return "100%: the new model everywhere"
        parts = []
        if self.kubernetes and self.running.image == self.image:
            parts.append("Kubernetes unchanged (the same image)")
        elif self.kubernetes:
            pods, stable = (
                canary_pods(self.settings.kubernetes_min_replicas, percent),
                self.settings.kubernetes_min_replicas,
            )
            share = 100 * pods / (pods + stable)
            if self.settings.kubernetes_gateway:
                parts.append(f"Kubernetes {percent}% of the Gateway route to {pods} canary pod(s)")
            else:
                parts.append(
                    f"Kubernetes {pods} canary pod(s) beside {stable}+ stable (at most {share:.0f}%)"
                )
        if self.lambda_:
            parts.append(
                f"Lambda {percent}% of live"
                if self.running.lambda_version
                else "Lambda all at once (no stable version recorded)"
            )
        return f"{percent}%: " + ", ".join(parts)


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
        port = free_port()
        remote = "8080" if canary else "80"
        command = [
            "kubectl",
            "port-forward",
            "-n",
            outputs["kubernetesNamespace"],
            target,
            f"{port}:{remote}",
        ]
        with subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        ) as forward:
            try:
                listening(port, forward, " ".join(command))
                yield f"http://127.0.0.1:{port}"
            finally:
                forward.terminate()


def listening(port: int, forward: subprocess.Popen[str], command: str, seconds: float = 30) -> None:
    """Until the port-forward accepts connections: the first scrape must not race its start."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if forward.poll() is not None:
            error = forward.stderr.read().strip() if forward.stderr else ""
            raise RolloutError(f"`{command}` exited: {error or forward.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.2)
    raise RolloutError(f"`{command}` did not listen within {seconds:.0f} s")


@dataclass
class Timeline:
    lines: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        print(line, flush=True)
        self.lines.append(line)

    def polls(self, result: Watch, thresholds: Thresholds) -> None:
        for poll in result.polls:
            unhealthy = [f"{name} {state}" for name, state in poll.alarms.items() if state != "OK"]
            states = ", ".join(unhealthy) or (f"{len(poll.alarms)} OK" if poll.alarms else "-")
            self.add(
                f"| {poll.seconds:.1f} s | {judged(poll.kubernetes, thresholds)} | {states} "
                f"| {'; '.join(poll.breaches) or '-'} |"
            )


@dataclass
class Rollout:
    plan: Plan
    engine: Engine
    example: Example
    targets: Targets
    bake_seconds: float
    interval: float
    wait_seconds: float = 180
    timeline: Timeline = field(default_factory=Timeline)

    @property
    def thresholds(self) -> Thresholds:
        s = self.plan.settings
        return Thresholds(s.alarm_error_ratio, s.alarm_throttle_ratio, s.alarm_p99_ms)

    def run(self) -> int:
        plan = self.plan
        model = plan.settings.model_name
        self.timeline.add(f"### {plan.settings.stack}: {plan.strategy} rollout of {model}")
        self.timeline.add("")
        self.timeline.add(f"Steps: {', '.join(f'{p}%' for p in plan.steps)}. {self._slo()}")
        try:
            for percent in plan.steps:
                self.timeline.add("")
                self.timeline.add(f"**Step {plan.describe(percent)}**")
                outputs = self.engine.up(plan.inputs(percent))
                self._smoke(outputs, canary=percent < 100)
                if percent < 100 or plan.strategy == "all-at-once":
                    self._bake(outputs, canary=percent < 100)
        except (RolloutError, SmokeError, MetricsError, OSError) as error:
            return self._roll_back(str(error))
        self.timeline.add("")
        self.timeline.add(f"**Deployed**: {model} serves all traffic from {plan.image}.")
        return DEPLOYED

    def _slo(self) -> str:
        t = self.thresholds
        return (
            f"SLO: error ratio ≤ {t.max_error_ratio:g}, throttle ratio ≤ {t.max_throttle_ratio:g}, "
            f"p99 ≤ {t.max_p99_ms:g} ms; each step baked {self.bake_seconds:.0f} s."
        )

    def _check(self, runtime: str, base: str, send: Any = plain_send) -> None:
        self.timeline.add(f"- smoke: {check(runtime, base, self.example, send, self.wait_seconds)}")

    def _smoke(self, outputs: dict[str, Any], canary: bool) -> None:
        """The new model alone: its canary pods and canary alias during a step, everything at 100%."""
        if canary:
            if outputs.get("kubernetesCanary"):
                with self.targets.kubernetes(outputs, canary=True) as base:
                    self._check("kubernetes canary", base)
            if outputs.get("lambdaCanaryEndpoint"):
                region = outputs["functionArn"].split(":")[3]
                self._check("lambda canary", outputs["lambdaCanaryEndpoint"], signed_send(region))
            return
        if "kubernetes" in outputs.get("runtimes", []) and self.targets.kubernetes_url:
            with self.targets.kubernetes(outputs, canary=False) as base:
                self._check("kubernetes", base)
            outputs = {**outputs, "runtimes": [r for r in outputs["runtimes"] if r != "kubernetes"]}
        for line in smoke(outputs, self.example, self.wait_seconds):
            self.timeline.add(f"- smoke: {line}")

    def _bake(self, outputs: dict[str, Any], canary: bool) -> None:
        if self.bake_seconds <= 0:
            self.timeline.add("- bake: none (rolloutBakeMinutes is 0)")
            return
        alarm_names = outputs.get("lambdaCanaryAlarms" if canary else "lambdaAlarms") or []
        alarms = None
        if alarm_names:
            import boto3

            cloudwatch = boto3.client("cloudwatch", region_name=outputs["functionArn"].split(":")[3])
            alarms = lambda: alarm_breaches(cloudwatch, alarm_names)  # noqa: E731
        with contextlib.ExitStack() as stack:
            scrape = None
            if "kubernetes" in outputs.get("runtimes", []) and (
                not canary or outputs.get("kubernetesCanary")
            ):
                base = stack.enter_context(self.targets.kubernetes(outputs, canary=canary))
                scrape = scraper(f"{base}/metrics", outputs["modelName"])
            self.timeline.add("")
            self.timeline.add("| after | Kubernetes | Lambda alarms | breach |")
            self.timeline.add("|---:|---|---|---|")
            result = watch(self.bake_seconds, self.interval, self.thresholds, scrape, alarms)
            self.timeline.polls(result, self.thresholds)
        if result.breaches:
            raise RolloutError("; ".join(result.breaches))

    def _roll_back(self, reason: str) -> int:
        seen = time.monotonic()
        self.timeline.add("")
        self.timeline.add(f"**Failed**: {reason}")
        running = self.plan.running
        if running.image is None and running.lambda_version is None:
            self.timeline.add("Nothing to roll back to: this stack ran no earlier model.")
            return FAILED
        try:
            self.engine.up(self.plan.rollback_inputs())
        except RolloutError as error:
            self.timeline.add(
                f"**The rollback failed too**: {error}. Run the deploy workflow with an earlier ref."
            )
            return FAILED
        kept = []
        if running.image and self.plan.kubernetes:
            kept.append(f"Kubernetes runs {running.image}")
        if running.lambda_version and self.plan.lambda_:
            kept.append(f"Lambda's live alias is on version {running.lambda_version}")
        seconds = time.monotonic() - seen
        self.timeline.add(
            f"**Rolled back** {seconds:.0f} s after the failure was seen; all traffic on the stable model: "
            f"{'; '.join(kept)}."
        )
        return ROLLED_BACK


def abort(engine: Engine, settings: Settings, timeline: Timeline) -> int:
    """Put the stack back on the stable side its outputs recorded, whatever a cancelled run left: its
    outputs are written when an up completes, so an up interrupted midway may have created a canary
    they do not mention. One up, a no-op when nothing was left running."""
    outputs = engine.outputs()
    running = Running.of(outputs)
    if running.image is None and running.lambda_version is None:
        timeline.add(f"{settings.stack}: no model was deployed before; nothing to go back to.")
        return DEPLOYED
    plan = Plan(settings, running, running.image or engine.image, "canary")
    engine.up(plan.rollback_inputs(), after_cancel=True)
    kept = [
        f"Kubernetes runs {running.image}" if running.image and plan.kubernetes else "",
        f"Lambda's live alias is on version {running.lambda_version}"
        if running.lambda_version and plan.lambda_
        else "",
    ]
    timeline.add(
        f"{settings.stack}: aborted; no canary runs, all traffic on the stable model: "
        f"{'; '.join(filter(None, kept))}."
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
        help="all-at-once skips the canary for this deploy",
    )
    parser.add_argument("--metadata", type=Path, default=ROOT / "dist" / "model-metadata.json")
    parser.add_argument("--bake-seconds", type=float, help="instead of rolloutBakeMinutes")
    parser.add_argument("--interval", type=float, default=15, help="seconds between looks at the signals")
    parser.add_argument(
        "--lock-patience-seconds",
        type=float,
        default=LOCK_PATIENCE_SECONDS,
        help="abort: how long to wait for a cancelled up's lock before clearing it",
    )
    parser.add_argument(
        "--wait-seconds", type=float, default=180, help="how long new pods may take to be ready"
    )
    parser.add_argument("--kubernetes-url", help="the stable pods' base URL instead of a port-forward")
    parser.add_argument("--kubernetes-canary-url", help="the canary pods' base URL instead of a port-forward")
    parser.add_argument("--summary", type=Path, help="append the timeline here (a job summary)")
    args = parser.parse_args(argv)
    timeline = Timeline()
    try:
        settings = read_environment(args.env)
        engine = Engine(args.stack, args.image, args.lock_patience_seconds)
        if args.command == "abort":
            return abort(engine, settings, timeline)
        strategy = settings.rollout_strategy if args.strategy == "settings" else args.strategy
        rollout = Rollout(
            Plan(settings, Running.of(engine.outputs()), args.image, strategy),
            engine,
            Example.read(args.metadata),
            Targets(args.kubernetes_url, args.kubernetes_canary_url),
            settings.rollout_bake_minutes * 60 if args.bake_seconds is None else args.bake_seconds,
            args.interval,
            args.wait_seconds,
            timeline,
        )
        return rollout.run()
    except (SettingsError, RolloutError, SmokeError, OSError, ValueError) as error:
        timeline.add(f"error: {error}")
        return FAILED
    finally:
        if args.summary and timeline.lines:
            with args.summary.open("a") as summary:
                summary.write("\n".join(timeline.lines) + "\n")


if __name__ == "__main__":
    os.environ.setdefault("PULUMI_SKIP_UPDATE_CHECK", "true")
    sys.exit(main())
