"""A shadow phase as the deploy job runs it (`rollout.sh`), through the real engine on the local control
plane: the program declares the shadow's address and policies, the rollout's first step runs the new
model as shadow pods outside the Service, and the stable side's count of what they answered otherwise
decides. A classifier with two classes swapped (every answer a 200, the mix unchanged) is rolled back
before any client sees it, and so are a model collapsed onto one class and a LiteRT file that drifted
from its TensorFlow answers; an honest retrain goes on through its canary to promotion.

kwok's pods run no containers, so real `python -m serving` processes (LiteRT) stand in for the pods: a
stable server mirroring to the new model's, with the sample rate the program gave the stable
Deployment."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.engine.conftest import FACTS, IMAGE, Runner, checkout, configure
from tests.engine.control_plane import ControlPlane
from tests.model_servers import Server, faulty_models, start

NAMESPACE = "twinserve-shadow"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments"
RETRAINED = f"registry.example/twinserve@sha256:{'7e' * 32}"
FAULTY = {  # each new model's image, and what its shadow phase must be failed on
    "swapped": (
        f"registry.example/twinserve@sha256:{'5a' * 32}",
        r"kubernetes (shadow disagreement (0\.\d{4}) > 0\.05)",
    ),
    "collapsed": (  # whichever is judged first: 100 mirrored rows compared, or 20 of each class answered
        f"registry.example/twinserve@sha256:{'c0' * 32}",
        r"kubernetes (shadow disagreement (0\.\d{4}) > 0\.05|prediction mix PSI \d+\.\d{3} \(0 3\d% → 100%)",
    ),
    "drifting": (
        f"registry.example/twinserve@sha256:{'d1' * 32}",
        r"kubernetes shadow: the ((model's example|golden set's request 1 of 1)) got a different answer",
    ),
}
# Inputs on each side of the sorter's boundaries, and the class the stable model answers for each.
CLASSES = {2.0: 1, 5.0: 2, 8.0: 0}


@pytest.fixture(scope="module")
def sorters(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stable sorter, its swapped, collapsed and retrained twins (tests/workflows/faulty_models.py),
    and the stable one with its model.tflite replaced by the retrain's: TensorFlow answers as exported,
    LiteRT otherwise (its top classes the same)."""
    variants = ("stable", "swapped", "collapsed", "retrained")
    built = faulty_models(tmp_path_factory.mktemp("sorters"), *(f"sorter-{v}" for v in variants))
    drifting = built / "sorter-drifting" / "models"
    shutil.copytree(built / "sorter-stable" / "models", drifting)
    retrained_file = built / "sorter-retrained" / "models" / "sorter" / "1" / "model.tflite"
    shutil.copyfile(retrained_file, drifting / "sorter" / "1" / "model.tflite")
    return built


def metadata(sorters: Path, variant: str) -> Path:
    """The metadata.json the deploy job finds beside the zips of the model it deploys."""
    return sorters / f"sorter-{variant}" / "models" / "sorter" / "1" / "metadata.json"


@pytest.fixture(scope="module")
def deploy(
    new_runner: Callable[..., Runner], cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., tuple[subprocess.CompletedProcess[str], str]]:
    """The deploy job's rollout step: dev set to a 50% shadow phase, then a canary."""
    tree = checkout(tmp_path_factory.mktemp("shadow-checkout"), runtimes=["kubernetes"])
    configure(tree, {
        "twinserve:modelName": "sorter",
        "twinserve:kubernetesNamespace": NAMESPACE,
        "twinserve:rolloutStrategy": "canary",
        "twinserve:rolloutShadowMinutes": 5,
        "twinserve:rolloutShadowPercent": 50,
    })  # fmt: skip
    runner = new_runner(
        PULUMI_BACKEND_URL=f"file://{tmp_path_factory.mktemp('state')}",
        PULUMI_SECRETS_PROVIDER="passphrase",
        PULUMI_CONFIG_PASSPHRASE="",
        KUBECONFIG=str(cluster.kubeconfig),
        AWS_REGION="us-east-1",
        COMMIT="c1" * 20,
    )
    summaries = tmp_path_factory.mktemp("summaries")

    def run(image: str, model: Path, **urls: str) -> tuple[subprocess.CompletedProcess[str], str]:
        """`rollout.sh run dev IMAGE` with `urls` (kubernetes_url=…) in place of the port-forwards."""
        summary = summaries / f"{image[-8:]}.md"
        command = [str(tree / ".github" / "scripts" / "rollout.sh"), "run", "dev", image,
                   "--metadata", str(model), "--interval", "0.5", "--wait-seconds", "30",
                   "--bake-seconds", "3", "--shadow-seconds", "8"]  # fmt: skip
        for name, url in urls.items():
            command += [f"--{name.replace('_', '-')}", url]
        env = {**runner.env, "ENVIRONMENT": "dev", "GITHUB_STEP_SUMMARY": str(summary)}
        result = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, timeout=900)
        return result, summary.read_text() if summary.exists() else ""

    return run


def images(cluster: ControlPlane) -> dict[str, str]:
    found = cluster.api.get(DEPLOYMENTS)["items"]
    return {d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["image"] for d in found}


def server_env(cluster: ControlPlane, name: str) -> dict[str, str]:
    (container,) = cluster.api.get(f"{DEPLOYMENTS}/{name}")["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in container["env"]}


@pytest.fixture(scope="module")
def first_deploy(deploy: Callable[..., tuple], cluster: ControlPlane, sorters: Path) -> dict[str, str]:
    """The stable sorter deployed all at once (nothing ran before); its stable pods' environment."""
    stable = start(sorters / "sorter-stable" / "models", TWINSERVE_RUNTIME="litert")
    try:
        result, summary = deploy(IMAGE, metadata(sorters, "stable"), kubernetes_url=stable.url)
    finally:
        stable.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Steps: 100%." in summary
    return server_env(cluster, "sorter")


@pytest.fixture(scope="module")
def mirroring(sorters: Path, first_deploy: dict[str, str]) -> Iterator[dict[str, dict[str, Server]]]:
    """Per new model: its server (the shadow and canary pods), and a stable server mirroring to it at
    the rate the program gave the stable pods."""
    running: dict[str, dict[str, Server]] = {}
    try:
        for variant in (*FAULTY, "retrained"):
            new = start(sorters / f"sorter-{variant}" / "models", TWINSERVE_RUNTIME="litert")
            running[variant] = {"new": new}
            running[variant]["stable"] = start(
                sorters / "sorter-stable" / "models",
                TWINSERVE_SHADOW_URL=new.url,
                TWINSERVE_SHADOW_SAMPLE_RATE=first_deploy["TWINSERVE_SHADOW_SAMPLE_RATE"],
                TWINSERVE_RUNTIME="litert",
            )
        yield running
    finally:
        for servers in running.values():
            for server in servers.values():
                server.stop()


PAUSE_SECONDS = 0.01  # between a client's requests: about 150 a second in all, for the tiers beside


@contextmanager
def clients(url: str) -> Iterator[dict[str, int]]:
    """Two clients of the stable side sending 2, 5 and 8 in turn until the block ends; counts the answers
    and those whose top class is not the stable model's."""
    seen, stop = {"answers": 0, "not stable's": 0}, threading.Event()

    def client() -> None:
        while not stop.is_set():
            for x, expected in CLASSES.items():
                body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 1], "data": [x]}]}
                request = urllib.request.Request(
                    f"{url}/v2/models/sorter/infer",
                    json.dumps(body).encode(),
                    {"content-type": "application/json"},
                )
                with urllib.request.urlopen(request, timeout=30) as response:
                    probabilities = json.loads(response.read())["outputs"][0]["data"]
                seen["answers"] += 1
                seen["not stable's"] += probabilities.index(max(probabilities)) != expected
                time.sleep(PAUSE_SECONDS)

    threads = [threading.Thread(target=client) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        yield seen
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)


def urls(servers: dict[str, Server]) -> dict[str, str]:
    """The deploy's targets: the stable pods' metrics from the mirroring stable server, the new model's
    own server as the shadow, the canary and (after promotion) the Service."""
    new = servers["new"]
    return {
        "kubernetes_url": new.url,
        "kubernetes_metrics_url": servers["stable"].metrics_url,
        "kubernetes_shadow_url": new.url,
        "kubernetes_shadow_metrics_url": new.metrics_url,
        "kubernetes_canary_url": new.url,
        "kubernetes_canary_metrics_url": new.metrics_url,
    }


def test_the_program_gives_the_stable_pods_the_shadow_services_address_and_egress_there_alone(
    first_deploy: dict[str, str], cluster: ControlPlane
) -> None:
    service = cluster.api.get(f"/api/v1/namespaces/{NAMESPACE}/services/sorter-shadow")
    assert first_deploy["TWINSERVE_SHADOW_URL"] == f"http://{service['spec']['clusterIP']}"
    assert first_deploy["TWINSERVE_SHADOW_SAMPLE_RATE"] == "0.5"
    policies = f"/apis/networking.k8s.io/v1/namespaces/{NAMESPACE}/networkpolicies"
    stable = cluster.api.get(f"{policies}/sorter")["spec"]
    (egress,) = stable["egress"]
    assert egress["to"] == [{"podSelector": {"matchLabels": service["spec"]["selector"]}}]
    assert cluster.api.get(f"{policies}/sorter-shadow")["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert images(cluster) == {"sorter": IMAGE}  # no shadow pods until a rollout runs one


@pytest.mark.parametrize("variant", list(FAULTY))
def test_a_faulty_model_answering_200_is_rolled_back_in_its_shadow_phase_before_any_client_sees_it(
    deploy: Callable[..., tuple],
    cluster: ControlPlane,
    sorters: Path,
    mirroring: dict[str, dict[str, Server]],
    first_deploy: dict[str, str],
    variant: str,
) -> None:
    """Two classes swapped (the mix about the same) is failed on the stable side's count of mirrored
    rows it answered otherwise, a collapse onto one class on that or on its mix against the stable
    pod's, whichever has enough rows first; the drifted LiteRT file at the shadow pods' smoke test,
    by the golden set."""
    image, failure = FAULTY[variant]
    servers = mirroring[variant]
    service = {"kubernetes_url": servers["stable"].url}  # what the Service reaches: the stable pods
    with clients(servers["stable"].url) as seen:
        result, summary = deploy(image, metadata(sorters, variant), **(urls(servers) | service))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Steps: shadow, 10%, 100%." in summary
    assert "**Step shadow: Kubernetes mirrors 50% of the stable pods' requests to 1 shadow pod(s)" in summary
    breach = re.search(r"\*\*Failed\*\*: " + failure, summary)
    assert breach, summary
    if variant != "drifting":
        assert (
            "- smoke: kubernetes shadow: ready, metadata, the model's example and its golden set" in summary
        )
        disagreement = breach.group(2)
        assert disagreement is None or 0.5 < float(disagreement) < 0.8  # 2 of the 3 inputs change class
        # What moved, from the artifact's own rows (x near 0: class 1), through the Service and the shadow.
        evidence = (
            "- golden rows answered otherwise (of 4; no client's request is logged): row 1: stable 1 → new 0"
        )
        assert evidence in summary
    assert "**Step 10%" not in summary  # never a canary, let alone promoted
    assert images(cluster) == {"sorter": IMAGE}  # the shadow Deployment is gone
    assert server_env(cluster, "sorter") == first_deploy  # and the stable pods were never touched
    assert seen["answers"] > 0
    assert seen["not stable's"] == 0  # the clients only ever got the stable answers
    polls = re.findall(r"^\| (\d+\.\d) s \| .* \|$", summary, re.MULTILINE)
    rolled = re.search(r"\*\*Rolled back\*\* (\d+) s after the failure was seen", summary)
    assert rolled, summary
    when = f"{polls[-1]} s into its bake" if polls else "at its smoke test, before the bake"
    signal = breach.group(1).split(" (")[0]
    FACTS.append(
        f"shadow phase of the sorter {variant}: failed on {signal} {when}, rolled back {rolled.group(1)} s "
        f"later; clients got {seen['answers']} answers, none of them the new model's"
    )


def test_an_honest_retrain_passes_its_shadow_phase_and_its_canary_and_is_promoted(
    deploy: Callable[..., tuple],
    cluster: ControlPlane,
    sorters: Path,
    mirroring: dict[str, dict[str, Server]],
) -> None:
    servers = mirroring["retrained"]
    with clients(servers["stable"].url) as seen:
        result, summary = deploy(RETRAINED, metadata(sorters, "retrained"), **urls(servers))
    assert result.returncode == 0, result.stdout + result.stderr
    agreed = re.search(r"- shadow: top classes agreed on 100\.00% of (\d+) mirrored rows", summary)
    assert agreed, summary
    assert "**Step 10%: Kubernetes 1 canary pod(s)" in summary
    assert f"**Deployed**: sorter serves all traffic from {RETRAINED}." in summary
    assert images(cluster) == {"sorter": RETRAINED}
    assert seen["not stable's"] == 0
    FACTS.append(
        f"shadow phase of an honest retrain: its top class agreed on all {agreed.group(1)} mirrored rows "
        "in an 8 s bake; canary baked, promoted"
    )
