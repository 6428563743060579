"""`infra/delivery/rollout.py` as the deploy job runs it (`rollout.sh`), through the real engine on the local
control plane: a first deploy; a canary of a model failing one request in ten, rolled back on its
error ratio; a healthy canary, promoted; one killed mid-up, aborted. kwok's pods run no containers, so
real `python -m serving` processes (the main virtualenv's) stand in for the pods the workflow would
port-forward to; the engine's objects are read back from the API server after each step."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from tests.engine.conftest import FACTS, IMAGE, Runner, checkout, configure
from tests.engine.control_plane import ControlPlane
from tests.model_servers import Server, traffic

NAMESPACE = "twinserve-rollout"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments"
SECOND = f"registry.example/twinserve@sha256:{'cd' * 32}"
THIRD = f"registry.example/twinserve@sha256:{'ef' * 32}"
FAILING = 13.0  # tests/workflows/faulty_models.py's failing input


@pytest.fixture(scope="module")
def deploy(
    new_runner: Callable[..., Runner],
    cluster: ControlPlane,
    tmp_path_factory: pytest.TempPathFactory,
    scorer_servers: dict[str, Server],
    scorer_metadata: Path,
) -> Callable[..., tuple[subprocess.CompletedProcess[str], str]]:
    """The deploy job's rollout step on one runner: a file backend, dev set to a canary of `scorer`."""
    tree = checkout(tmp_path_factory.mktemp("rollout-checkout"), runtimes=["kubernetes"])
    configure(tree, {
        "twinserve:modelName": "scorer",
        "twinserve:kubernetesNamespace": NAMESPACE,
        "twinserve:rolloutStrategy": "canary",
        "twinserve:alarmErrorRatio": 0.005,
    })  # fmt: skip
    backend = tmp_path_factory.mktemp("state")
    runner = new_runner(
        PULUMI_BACKEND_URL=f"file://{backend}",
        PULUMI_SECRETS_PROVIDER="passphrase",
        PULUMI_CONFIG_PASSPHRASE="",
        KUBECONFIG=str(cluster.kubeconfig),
        AWS_REGION="us-east-1",
        COMMIT="c0" * 20,
    )
    summary_dir = tmp_path_factory.mktemp("summaries")

    def run(
        image: str,
        canary: Server | None,
        verb: str = "run",
        bake_seconds: str = "3",
        background: list[subprocess.Popen] | None = None,
        extra: tuple[str, ...] = (),
    ) -> tuple[subprocess.CompletedProcess[str] | None, str]:
        """The job's step: `rollout.sh run dev IMAGE`, its summary in GITHUB_STEP_SUMMARY."""
        summary = summary_dir / f"{image[-8:]}-{time.monotonic_ns()}.md"
        script = str(tree / ".github" / "scripts" / "rollout.sh")
        command = [script, verb, "dev", image, "--metadata", str(scorer_metadata), "--kubernetes-url",
                   scorer_servers["none"].url, "--kubernetes-metrics-url", scorer_servers["none"].metrics_url,
                   "--interval", "0.5", "--wait-seconds", "30", "--bake-seconds", bake_seconds,
                   *extra]  # fmt: skip
        if canary:
            command += [
                "--kubernetes-canary-url",
                canary.url,
                "--kubernetes-canary-metrics-url",
                canary.metrics_url,
            ]
        env = {**runner.env, "ENVIRONMENT": "dev", "GITHUB_STEP_SUMMARY": str(summary)}
        if background is not None:  # the job's step as GitHub's runner starts it, for a cancel
            background.append(runner_step(tree, verb, image, command[4:], env, summary))
            return None, ""
        result = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, timeout=900)
        outputs = tree / "build" / "outputs-dev.json"
        assert json.loads(outputs.read_text())["image"] == images(cluster)["scorer"]  # for deploy-summary.sh
        return result, summary.read_text() if summary.exists() else ""

    run.backend = backend  # type: ignore[attr-defined]
    run.tree = tree  # type: ignore[attr-defined]
    run.home = runner.env["PULUMI_HOME"]  # type: ignore[attr-defined]
    return run


def runner_step(
    tree: Path, verb: str, image: str, extra: list[str], env: dict[str, str], summary: Path
) -> subprocess.Popen:
    """The deploy step's own `run:` text from deploy-stack.yml, run as actions/runner runs a step:
    `bash --noprofile --norc -eo pipefail <script>`, in a session of its own only so the test can
    clean up; the cancel below signals the step's process alone."""
    (step,) = [
        s["run"]
        for s in yaml.safe_load((tree / ".github" / "workflows" / "deploy-stack.yml").read_text())["jobs"][
            "up"
        ]["steps"]
        if f"rollout.sh {verb}" in s.get("run", "")
    ]
    script = summary.with_suffix(".step.sh")
    script.write_text(step + " " + " ".join(f"'{a}'" for a in extra) + "\n")
    with summary.with_suffix(".log").open("w") as log:
        return subprocess.Popen(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=tree,
            env={**env, "STACK": "dev", "IMAGE": image},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def cancel_as_the_runner(step: subprocess.Popen) -> float:
    """actions/runner's cancel (ProcessInvoker.cs): SIGINT to the step's process, SIGTERM 7.5 s later,
    a kill 2.5 s after that; the `if: cancelled()` step starts about 12.5 s after the cancel. Returns
    how long the step took to exit."""
    cancelled = time.monotonic()
    for sig, wait in ((signal.SIGINT, 7.5), (signal.SIGTERM, 2.5), (signal.SIGKILL, 0)):
        if step.poll() is not None:
            break
        step.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            step.wait(timeout=wait)
    step.wait(timeout=5)
    exited = time.monotonic() - cancelled
    time.sleep(max(0.0, 12.5 - exited))
    return exited


def pulumi_processes() -> list[str]:
    """Every pulumi CLI still running on this machine."""
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == "pulumi":
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
    return found


def kill_matching(*fragments: str) -> None:
    """SIGKILL every process whose command line names one of these paths."""
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and int(entry.name) != os.getpid():
                argv = (entry / "cmdline").read_bytes().decode(errors="replace")
                if any(fragment in argv for fragment in fragments):
                    os.kill(int(entry.name), signal.SIGKILL)


def images(cluster: ControlPlane) -> dict[str, str]:
    found = cluster.api.get(DEPLOYMENTS)["items"]
    return {d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["image"] for d in found}


def test_a_first_deploy_goes_all_at_once(deploy: Callable[..., tuple], cluster: ControlPlane) -> None:
    result, summary = deploy(IMAGE, None)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Steps: 100%." in summary
    assert "- smoke: kubernetes: ready, metadata, the model's example and its golden set (4 rows)" in summary
    assert "**Deployed**: scorer serves all traffic from " + IMAGE in summary
    assert images(cluster) == {"scorer": IMAGE}


def test_a_canary_failing_one_request_in_ten_is_rolled_back_on_its_error_ratio(
    deploy: Callable[..., tuple], cluster: ControlPlane, scorer_servers: dict[str, Server]
) -> None:
    with traffic(scorer_servers["errors"].url, 10, FAILING) as sent:
        result, summary = deploy(SECOND, scorer_servers["errors"])
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Steps: 10%, 100%." in summary
    assert "**Step 10%: Kubernetes 1 canary pod(s) beside 1+ stable (at most 50%)**" in summary
    assert "- smoke: kubernetes canary: ready, metadata, the model's example and its golden set" in summary
    breach = re.search(r"\*\*Failed\*\*: kubernetes error ratio (0\.\d{4}) > 0\.0050", summary)
    assert breach, summary
    assert 0.05 < float(breach.group(1)) < 0.2
    assert f"all traffic on the stable model: Kubernetes runs {IMAGE}." in summary
    assert "100%" not in summary.split("**Step 10%")[1]  # never promoted
    assert images(cluster) == {"scorer": IMAGE}  # the canary Deployment is gone, stable untouched
    assert sent["faulty inputs"] > 0
    seconds = re.search(r"\*\*Rolled back\*\* (\d+) s after the failure was seen", summary)
    assert seconds, summary
    FACTS.append(
        f"rollout of a canary failing 1 request in 10 on dev: rolled back on error ratio {breach.group(1)}, "
        f"the canary deleted {seconds.group(1)} s after the breach was seen (one up)"
    )


def test_a_healthy_canary_is_promoted(
    deploy: Callable[..., tuple], cluster: ControlPlane, scorer_servers: dict[str, Server]
) -> None:
    with traffic(
        scorer_servers["none"].url, 10, FAILING
    ):  # the healthy model answers the "failing" input too
        result, summary = deploy(THIRD, scorer_servers["none"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "**Step 10%" in summary
    assert "**Step 100%: the new model everywhere**" in summary
    assert "| breach |" in summary
    assert f"**Deployed**: scorer serves all traffic from {THIRD}." in summary
    assert images(cluster) == {"scorer": THIRD}
    FACTS.append("rollout of a healthy canary on dev: baked 3 s at 1 pod beside 1, then promoted")


@contextlib.contextmanager
def a_canary_awaiting_its_pods(
    deploy: Callable[..., tuple], cluster: ControlPlane, canary: Server
) -> Iterator[subprocess.Popen]:
    """The deploy step (as the runner starts it) of a canary whose pods a quota refuses, yielded once
    its Deployment exists: the provider is then awaiting it, mid-create. Everything it started, and
    the quota, are gone afterwards."""
    pods = f"/api/v1/namespaces/{NAMESPACE}/pods"
    quota = f"/api/v1/namespaces/{NAMESPACE}/resourcequotas"
    running = len(cluster.api.get(pods)["items"])
    cluster.api.request(
        "POST", quota, {"metadata": {"name": "no-canary-pods"}, "spec": {"hard": {"pods": str(running)}}}
    )
    started: list[subprocess.Popen] = []
    try:
        deploy(SECOND, canary, bake_seconds="600", background=started)
        (step,) = started
        cluster.api.wait_for(f"{DEPLOYMENTS}/scorer-canary", lambda d: True, timeout=300)
        time.sleep(1)  # the provider is now awaiting the canary's pods
        yield step
    finally:
        for process in started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        cluster.api.request("DELETE", f"{quota}/no-canary-pods")


def pending_operations(deploy: Callable[..., tuple]) -> list:
    """What the stack's checkpoint (the file backend's) records as interrupted."""
    (checkpoint,) = deploy.backend.glob(".pulumi/stacks/**/dev.json")  # type: ignore[attr-defined]
    return json.loads(checkpoint.read_text())["checkpoint"]["latest"].get("pending_operations") or []


def test_a_deploy_cancelled_as_the_runner_cancels_while_awaiting_its_canary_stops_and_abort_removes_it(
    deploy: Callable[..., tuple], cluster: ControlPlane, scorer_servers: dict[str, Server]
) -> None:
    """The canary's pods are refused (a quota), so the provider awaits its Deployment: the cancel
    arrives mid-create. The step stops its update before the runner would kill it and before the abort
    starts, leaving no CLI running and the lock released, and the canary Deployment it created still in
    the cluster. The abort step puts the stack back on its stable side, deletes any canary object its
    state does not hold by name and leaves no pending operation: no canary pod behind the Service."""
    locks = deploy.backend / ".pulumi" / "locks"  # type: ignore[attr-defined]
    with a_canary_awaiting_its_pods(deploy, cluster, scorer_servers["none"]) as step:
        exited = cancel_as_the_runner(step)
        assert exited < 10, f"the step ran {exited:.1f} s after the cancel: the runner would have killed it"
        assert step.returncode == 130
        assert not pulumi_processes(), "a CLI of the cancelled step still runs"
        assert not list(locks.rglob("*.json")), "the interrupted update kept the stack's lock"
        assert cluster.api.get(f"{DEPLOYMENTS}/scorer-canary") is not None  # left behind
    result, summary = deploy(SECOND, None, "abort")
    assert result.returncode == 0, result.stdout + result.stderr
    # Interrupted (not killed), the provider hands back the half-made canary, so the state records it
    # and the abort's up deletes it; a CLI killed outright leaves it unrecorded, and the abort deletes
    # it by name (`- deleted the Deployment …, left by the interrupted update`). Either way: gone.
    assert "pending create" not in result.stdout.split("aborted")[-1]  # none left for the next deploy
    assert pending_operations(deploy) == []
    assert (
        f"dev: aborted; no canary runs, all traffic on the stable model: Kubernetes runs {THIRD}." in summary
    )
    cluster.api.wait_for(DEPLOYMENTS, lambda found: len(found["items"]) == 1, timeout=60)
    assert images(cluster) == {"scorer": THIRD}
    selector = "app.kubernetes.io/name=scorer"
    behind = cluster.api.get(f"/api/v1/namespaces/{NAMESPACE}/pods?labelSelector={selector}")["items"]
    assert all(p["metadata"]["labels"].get("twinserve.dev/track") != "canary" for p in behind)
    FACTS.append(
        f"a deploy cancelled as the runner cancels (SIGINT to the step alone) while awaiting its canary "
        f"stopped in {exited:.1f} s, lock released; the abort removed the canary, no pending operation left"
    )


def test_a_cli_killed_outright_mid_create_leaves_a_lock_and_an_unrecorded_canary_the_abort_clears(
    deploy: Callable[..., tuple], cluster: ControlPlane, scorer_servers: dict[str, Server]
) -> None:
    """What a cancel cannot prevent: the runner's force-kill five minutes after a cancel, or a lost
    machine. Killed while the provider awaits the canary's pods, the CLI leaves the lock and a pending
    create the engine never deletes. With no live update left, the abort clears the lock, deletes the
    canary by name and clears the pending create."""
    locks = deploy.backend / ".pulumi" / "locks"  # type: ignore[attr-defined]
    with a_canary_awaiting_its_pods(deploy, cluster, scorer_servers["none"]) as step:
        os.killpg(step.pid, signal.SIGKILL)  # the step, at once: nothing gets to clean up
        step.wait(timeout=30)
        # The CLI starts its plugins (the provider, the policy pack) in groups of their own: a lost
        # machine loses them too. Killed here, so the test leaves nothing running.
        kill_matching(str(deploy.tree), deploy.home)  # type: ignore[attr-defined]
        deadline = time.monotonic() + 30
        while pulumi_processes() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert list(locks.rglob("*.json")), "a killed CLI leaves its lock"
        assert pending_operations(deploy), "and its create pending"
    result, summary = deploy(SECOND, None, "abort", extra=("--lock-patience-seconds", "2"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the stack's lock is held by no running update: clearing it (pulumi cancel)" in result.stdout
    assert f"- deleted the Deployment {NAMESPACE}/scorer-canary, left by the interrupted update" in summary
    assert f"all traffic on the stable model: Kubernetes runs {THIRD}." in summary
    cluster.api.wait_for(DEPLOYMENTS, lambda found: len(found["items"]) == 1, timeout=60)
    assert images(cluster) == {"scorer": THIRD}
    assert not list(locks.rglob("*.json"))
    assert pending_operations(deploy) == []
    FACTS.append(
        "a CLI SIGKILLed mid-create left the lock and an unrecorded canary; the abort cleared the lock, "
        "deleted the canary by name and cleared the pending create"
    )
