"""A rollout's plan: the steps a strategy takes, and the inputs of each step's up and of the rollback.

Pure: it reads the environment's settings and what the stack served before (its outputs), and
decides; `infra/delivery/rollout.py` runs it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from program.settings import Settings


@dataclass(frozen=True)
class Running:
    """What the stack served before this deploy (its outputs): the side a rollout keeps stable."""

    image: str | None
    lambda_version: str | None
    commit: str | None = None  # the commit of main it was deployed from

    @property
    def nothing(self) -> bool:
        """A stack that served no model yet: nothing stable to keep or return to."""
        return self.image is None and self.lambda_version is None

    @classmethod
    def of(cls, outputs: dict[str, Any]) -> Running:
        version = outputs.get("lambdaLiveVersion")
        return cls(
            outputs.get("image") or None, str(version) if version else None, outputs.get("commit") or None
        )


SHADOW = 0  # the shadow phase's step: the new model answers mirrored requests, no client's


def shares(strategy: str, step: int) -> list[int]:
    """The new model's share at each step, ending at 100."""
    if strategy == "canary":
        return [step, 100]
    if strategy == "linear":
        return [*range(step, 100, step), 100]
    return [100]


def canary_pods(stable_pods: int, percent: int) -> int:
    """Pods giving the canary about `percent` of a Service's traffic beside `stable_pods`; at least one,
    so a small deployment's real share is higher than asked (the summary says how much), and at most
    as many as the stable side: past 50% a step by pods would multiply the footprint (90% beside 3
    stable pods asks 27), so the canary's share stays at half until the step that promotes it."""
    return min(stable_pods, max(1, round(stable_pods * percent / (100 - percent))))


def shadow_pods(stable_pods: int, percent: int) -> int:
    """Pods for `percent` of the stable pods' requests, mirrored: that share of their count, at least one."""
    return max(1, math.ceil(stable_pods * percent / 100))


@dataclass(frozen=True)
class Plan:
    """The inputs of each up: the new image, and the stable side from what the stack ran."""

    settings: Settings
    running: Running
    image: str
    strategy: str
    shadow: bool = True  # False: no shadow phase for this deploy (a by-hand all-at-once)

    @property
    def kubernetes(self) -> bool:
        return "kubernetes" in self.settings.runtimes

    @property
    def lambda_(self) -> bool:
        return "lambda" in self.settings.runtimes

    @property
    def _kubernetes_shadow(self) -> bool:
        return self.kubernetes and self.running.image is not None and self.running.image != self.image

    @property
    def _lambda_shadow(self) -> bool:
        return self.lambda_ and self.running.lambda_version is not None

    @property
    def shadowed(self) -> bool:
        """A shadow phase first: the environment has one, and a runtime runs an earlier model (Kubernetes
        an earlier image, Lambda a recorded version)."""
        return (
            self.shadow
            and self.settings.rollout.shadow_minutes > 0
            and (self._kubernetes_shadow or self._lambda_shadow)
        )

    @property
    def steps(self) -> list[int]:
        if self.running.nothing:
            return [100]  # a first deploy
        return [SHADOW] * self.shadowed + shares(self.strategy, self.settings.rollout.step_percent)

    @property
    def _no_canary(self) -> dict[str, str]:
        """What empties every canary and shadow input this stack has."""
        gateway = {"kubernetesCanaryPercent": "0"} if self.settings.kubernetes.gateway else {}
        lambda_ = {"lambdaShadow": "false"} if self.lambda_ else {}
        return {"canaryImage": "", "shadowImage": "", **gateway, "lambdaCanaryPercent": "0", **lambda_}

    @property
    def _shadow_pods(self) -> int:
        return shadow_pods(self.settings.kubernetes.min_replicas, self.settings.rollout.shadow_percent)

    def _shadow_inputs(self) -> dict[str, str]:
        """The stable side everywhere; the new model in shadow pods, and as the new version behind the
        `shadow` alias while `live` stays on the stable one."""
        values = {**self._no_canary, "image": self.running.image or self.image, "lambdaStableVersion": ""}
        if self._kubernetes_shadow:
            values |= {"shadowImage": self.image, "kubernetesShadowReplicas": str(self._shadow_pods)}
        if self._lambda_shadow:
            values |= {"lambdaStableVersion": str(self.running.lambda_version), "lambdaShadow": "true"}
        return values

    def inputs(self, percent: int) -> dict[str, str]:
        if percent == SHADOW:
            return self._shadow_inputs()
        if percent == 100:
            return {"image": self.image, **self._no_canary, "lambdaStableVersion": ""}
        values = {
            "image": self.running.image or self.image,
            "canaryImage": "",
            "shadowImage": "",
            "lambdaStableVersion": "",
            **({"lambdaShadow": "false"} if self.lambda_ else {}),
        }
        if self.kubernetes and self.running.image and self.running.image != self.image:
            pods = canary_pods(self.settings.kubernetes.min_replicas, percent)
            values |= {"canaryImage": self.image, "kubernetesCanaryReplicas": str(pods)}
            if self.settings.kubernetes.gateway:
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

    def stable_side(self) -> str:
        """What serves every request again after a rollback, per runtime."""
        kept = []
        if self.running.image and self.kubernetes:
            kept.append(f"Kubernetes runs {self.running.image}")
        if self.running.lambda_version and self.lambda_:
            kept.append(f"Lambda's live alias is on version {self.running.lambda_version}")
        return "; ".join(kept)

    def _shadow_parts(self) -> list[str]:
        share = self.settings.rollout.shadow_percent
        parts = []
        if self._kubernetes_shadow:
            pods = self._shadow_pods
            parts.append(f"Kubernetes mirrors {share}% of the stable pods' requests to {pods} shadow pod(s)")
        elif self.kubernetes:
            parts.append("Kubernetes unchanged (the same image)")
        if self._lambda_shadow:
            parts.append(
                f"Lambda's live alias stays on version {self.running.lambda_version} and hands {share}% of "
                "its requests to the new version's shadow alias"
            )
        elif self.lambda_:
            parts.append("Lambda all at once (no stable version recorded)")
        return parts

    @staticmethod
    def label(percent: int) -> str:
        return "shadow" if percent == SHADOW else f"{percent}%"

    def describe(self, percent: int) -> str:
        if percent == SHADOW:
            return "shadow: " + "; ".join(self._shadow_parts()) + "; no client gets the new model's answers"
        if percent == 100:
            return "100%: the new model everywhere"
        parts = []
        if self.kubernetes and self.running.image == self.image:
            parts.append("Kubernetes unchanged (the same image)")
        elif self.kubernetes:
            pods, stable = (
                canary_pods(self.settings.kubernetes.min_replicas, percent),
                self.settings.kubernetes.min_replicas,
            )
            share = 100 * pods / (pods + stable)
            if self.settings.kubernetes.gateway:
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
