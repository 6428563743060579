"""`infra/delivery/canary.py` against real servers: a good model is promoted, a model that fails a share of
requests or is slow on some is rolled back with the breached signal named, from the servers' own
/metrics under real client traffic; a classifier collapsed onto one class is rolled back on its
prediction mix against a stable server's, and an honest retrain is promoted."""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from serving.contract import GOLDEN_FILE, GoldenSet, Metadata
from tests.model_servers import traffic
from tests.serving.conftest import Server, start_server, stop_server
from tests.workflows import faulty_models
from tests.workflows.conftest import REPO
from tests.workflows.faulty_models import FAILING, SLOW

CANARY = [str(REPO / "infra" / ".venv" / "bin" / "python"), str(REPO / "infra" / "delivery" / "canary.py")]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    running = {
        fault: start_server(
            faulty_models.built(tmp_path_factory.mktemp(fault), fault),
            TWINSERVE_RUNTIME="tensorflow",
            TWINSERVE_DRAIN_SECONDS="0",
        )
        for fault in ("none", "errors", "slow")
    }
    yield running
    for server in running.values():
        stop_server(server)


def canary(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    command = [*CANARY, "--metrics-url", server.metrics_url, "--model", "scorer", "--interval", "0.5",
               "--bake-seconds", "4", "--min-requests", "30", *args]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_a_good_model_is_promoted_after_the_bake(servers: dict[str, Server], tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    with traffic(servers["none"].url, 10, 1.0):
        result = canary(servers["none"], "--summary", str(summary))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("### Canary analysis of scorer: promote\n")
    assert "no breach in 4 s" in result.stdout
    assert summary.read_text() == result.stdout


def test_a_model_failing_one_request_in_ten_is_rolled_back_on_its_error_ratio(
    servers: dict[str, Server],
) -> None:
    with traffic(servers["errors"].url, 10, FAILING) as sent:
        result = canary(servers["errors"], "--env", "prod")  # prod's alarmErrorRatio: 0.005
    assert result.returncode == 1, result.stderr
    breach = re.search(r"error: canary roll back: error ratio (0\.\d{4}) > 0\.0050", result.stderr)
    assert breach, result.stderr
    assert 0.05 < float(breach.group(1)) < 0.2
    last_step = float(result.stdout.strip().splitlines()[-1].split("|")[1])
    assert last_step < 4  # at the first step with enough requests, before the bake ends
    assert sent["faulty inputs"] > 0


def test_a_model_slow_on_some_inputs_is_rolled_back_on_its_p99(servers: dict[str, Server]) -> None:
    with traffic(servers["slow"].url, 20, SLOW):
        result = canary(servers["slow"], "--max-p99-ms", "100")
    assert result.returncode == 1, result.stderr
    assert "error: canary roll back: p99 latency" in result.stderr
    assert "> 100 ms" in result.stderr


def test_too_little_traffic_is_inconclusive(servers: dict[str, Server]) -> None:
    result = canary(servers["none"], "--bake-seconds", "1")
    assert result.returncode == 2
    assert "error: canary inconclusive: 0 requests in 1 s, fewer than the 30 a verdict needs" in result.stderr


def test_unreadable_metrics_are_named(servers: dict[str, Server]) -> None:
    result = canary(servers["none"], "--metrics-url", f"{servers['none'].url}/v2/health/live")
    assert result.returncode == 3
    assert result.stderr.startswith("error: the canary's metrics could not be read:")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "nowhere"], "error: no stack file "),
        (["--max-error-ratio", "-1"], "error: --max-error-ratio must be a finite number ≥ 0, not -1.0"),
        (["--env", "dev", "--max-p99-ms", "nan"], "error: --max-p99-ms must be a finite number ≥ 0, not nan"),
    ],
)
def test_a_bad_threshold_or_environment_is_named(
    servers: dict[str, Server], args: list[str], message: str
) -> None:
    result = canary(servers["none"], *args)
    assert result.returncode == 3
    assert result.stderr.startswith(message)


@pytest.fixture(scope="module")
def irises(model_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    """The built Iris as the stable model, beside a canary of each variant (faulty_models.py)."""
    artifact = model_root / "iris" / "1"
    roots = {"stable": model_root}
    for variant in ("collapsed", "swapped", "retrained"):
        roots[variant] = faulty_models.built_iris(tmp_path_factory.mktemp(variant), artifact, variant)
    running = {
        name: start_server(root, TWINSERVE_RUNTIME="litert", TWINSERVE_DRAIN_SECONDS="0")
        for name, root in roots.items()
    }
    yield running
    for server in running.values():
        stop_server(server)


@contextlib.contextmanager
def golden_traffic(golden: GoldenSet, *servers: Server) -> Iterator[None]:
    """The golden set's rows, one per request, sent to each server in the same order until the block
    ends: the stable model and the canary see the same inputs, as both tracks behind one Service do."""
    rows = [
        json.dumps({"inputs": [{**t.to_json(), "shape": [1, 4], "data": list(t.data[i * 4 : i * 4 + 4])}
                               for t in request.inputs]}).encode()
        for request in golden.requests for i in range(request.rows())
    ]  # fmt: skip
    stop = threading.Event()

    def send() -> None:
        for body in itertools.cycle(rows):
            if stop.is_set():
                return
            for server in servers:
                request = urllib.request.Request(
                    f"{server.url}/v2/models/iris/infer", body, {"content-type": "application/json"}
                )
                with urllib.request.urlopen(request, timeout=10) as answer:
                    answer.read()

    sender = threading.Thread(target=send)
    sender.start()
    try:
        yield
    finally:
        stop.set()
        sender.join(timeout=30)


def mix_canary(irises: dict[str, Server], variant: str, model_root: Path) -> subprocess.CompletedProcess[str]:
    artifact = model_root / "iris" / "1"
    golden = GoldenSet.read(artifact / GOLDEN_FILE, Metadata.read(artifact))
    command = [*CANARY, "--metrics-url", irises[variant].metrics_url, "--model", "iris",
               "--stable-metrics-url", irises["stable"].metrics_url, "--interval", "0.5",
               "--bake-seconds", "6", "--min-requests", "30"]  # fmt: skip
    with golden_traffic(golden, irises["stable"], irises[variant]):
        return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_a_model_collapsed_onto_one_class_is_rolled_back_on_its_prediction_mix(
    irises: dict[str, Server], model_root: Path
) -> None:
    """Every answer a 200, fast: only the mix against the stable model's, over the same inputs, tells."""
    result = mix_canary(irises, "collapsed", model_root)
    assert result.returncode == 1, result.stdout + result.stderr
    breach = re.search(
        r"error: canary roll back: prediction mix PSI (\d+\.\d{3}) \((.*)\) > 0\.2", result.stderr
    )
    assert breach, result.stderr
    assert float(breach.group(1)) > 1
    assert breach.group(2).startswith("setosa ")
    assert "→ 100%" in breach.group(2)


@pytest.mark.parametrize("variant", ["retrained", "swapped"])
def test_a_retrain_and_a_swap_between_equal_classes_keep_the_mix(
    irises: dict[str, Server], model_root: Path, variant: str
) -> None:
    """An honest retrain answers slightly differently and is promoted. Swapping two classes the traffic
    holds about equally leaves the mix as it was: the golden set (tests/workflows/test_smoke.py) is what
    stops that one."""
    result = mix_canary(irises, variant, model_root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "### Canary analysis of iris: promote" in result.stdout
    assert re.search(r"\| mix PSI 0\.0\d\d \(", result.stdout), result.stdout


@pytest.fixture(scope="module")
def mirroring(irises: dict[str, Server], model_root: Path) -> Iterator[dict[str, Server]]:
    """For each variant, a stable Iris that mirrors every request it answers to that variant's server."""
    running = {
        variant: start_server(model_root, TWINSERVE_RUNTIME="litert", TWINSERVE_DRAIN_SECONDS="0",
                              TWINSERVE_SHADOW_URL=irises[variant].url, TWINSERVE_SHADOW_SAMPLE_RATE="1")
        for variant in ("swapped", "retrained")
    }  # fmt: skip
    yield running
    for server in running.values():
        stop_server(server)


def shadow_canary(
    irises: dict[str, Server], mirroring: dict[str, Server], variant: str, model_root: Path
) -> subprocess.CompletedProcess[str]:
    """The bake of a shadow phase: clients reach the stable server alone, which mirrors to the new model;
    the new model's own metrics and the stable server's (its mirrors' verdicts) are judged."""
    artifact = model_root / "iris" / "1"
    golden = GoldenSet.read(artifact / GOLDEN_FILE, Metadata.read(artifact))
    command = [*CANARY, "--metrics-url", irises[variant].metrics_url, "--model", "iris",
               "--stable-metrics-url", mirroring[variant].metrics_url, "--interval", "0.5",
               "--bake-seconds", "6", "--min-requests", "30"]  # fmt: skip
    with golden_traffic(golden, mirroring[variant]):
        return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_a_shadow_with_two_classes_swapped_fails_on_its_disagreement(
    irises: dict[str, Server], mirroring: dict[str, Server], model_root: Path
) -> None:
    """The swap the prediction mix cannot see: mirrored answers compared row by row."""
    result = shadow_canary(irises, mirroring, "swapped", model_root)
    assert result.returncode == 1, result.stdout + result.stderr
    breach = re.search(r"error: canary roll back: shadow disagreement (0\.\d{4}) > 0\.05", result.stderr)
    assert breach, result.stderr
    assert 0.5 < float(breach.group(1)) < 0.8  # versicolor and virginica: two thirds of Iris's rows
    assert "prediction mix PSI" not in result.stderr


def test_an_honest_retrain_in_shadow_is_promoted(
    irises: dict[str, Server], mirroring: dict[str, Server], model_root: Path
) -> None:
    result = shadow_canary(irises, mirroring, "retrained", model_root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"shadow disagreement 0\.0000 of \d+ rows", result.stdout), result.stdout
