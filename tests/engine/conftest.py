"""The real-engine tier: the Pulumi CLI and pulumi-kubernetes' provider built by `make tools`, a local
control plane, and S3 + KMS served on loopback — every stack operation runs `infra/engine.py` (or a
workflow script) as a subprocess in a checkout of its own, as a runner would.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.engine.control_plane import ControlPlane, control_plane, free_port
from tests.model_servers import Server, faulty_models, start
from tests.tool_paths import tool_paths

REPO = Path(__file__).resolve().parents[2]
DIGEST = "sha256:" + "ab" * 32
IMAGE = f"registry.example/twinserve@{DIGEST}"
FACTS: list[str] = []  # what the engine did, printed at the end of the run


def pulumi_version(tools: dict[str, str]) -> str:
    return subprocess.run([tools["PULUMI"], "version"], capture_output=True, text=True).stdout.strip()


def pytest_report_header(config: pytest.Config) -> list[str]:
    tools = tool_paths()
    if not tools["PULUMI"]:
        return ["engine: not built; run `make tools`"]
    return [
        f"engine: pulumi {pulumi_version(tools)} ({tools['PULUMI']})",
        f"provider: pulumi-resource-kubernetes registered as v{tools['KUBERNETES_PROVIDER_VERSION']}, "
        f"built from {tools['KUBERNETES_PROVIDER_ORIGIN']} (an earlier commit than the SDK's release)",
        f"control plane: kube-apiserver v{tools['KUBERNETES_VERSION']} with etcd and kwok",
    ]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FACTS:
        terminalreporter.section("what the real engine did")
        for fact in FACTS:
            terminalreporter.write_line(fact)


@pytest.fixture(scope="session")
def tools() -> dict[str, str]:
    paths = tool_paths()
    missing = [name for name, path in paths.items() if path.startswith("/") and not Path(path).exists()]
    assert paths["PULUMI"], "no pulumi CLI: run `make tools`"
    assert not missing, f"missing {missing}: run `make tools`"
    return paths


@dataclass
class Runner:
    """A machine that runs the workflow's steps: its own PULUMI_HOME (plugins, login) and environment."""

    home: Path
    env: dict[str, str]


@pytest.fixture(scope="session")
def new_runner(tools: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Runner]:
    def make(**env: str) -> Runner:
        home = tmp_path_factory.mktemp("pulumi-home")
        runner_env = {
            "PATH": f"{Path(tools['PULUMI']).parent}:{os.environ['PATH']}",
            "HOME": str(home),
            "PULUMI_HOME": str(home / ".pulumi"),
            # No Python language host exists here, and nothing may be downloaded.
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",
            "TMPDIR": str(home),
            **env,
        }
        version = tools["KUBERNETES_PROVIDER_VERSION"]
        install = [tools["PULUMI"], "plugin", "install", "resource", "kubernetes", f"v{version}"]
        result = subprocess.run(
            [*install, "--file", tools["KUBERNETES_PROVIDER"]], env=runner_env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        return Runner(home, runner_env)

    return make


@pytest.fixture(scope="session")
def scorer_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A healthy and a failing `scorer` (tests/workflows/faulty_models.py), built once."""
    return faulty_models(tmp_path_factory.mktemp("models"), "none", "errors")


@pytest.fixture(scope="session")
def scorer_metadata(scorer_models: Path) -> Path:
    """The healthy scorer's metadata.json, which the deploy job finds beside the Lambda zips."""
    return scorer_models / "none" / "models" / "scorer" / "1" / "metadata.json"


@pytest.fixture(scope="session")
def scorer_servers(scorer_models: Path) -> Iterator[dict[str, Server]]:
    """Real `python -m serving` processes standing in for the pods a deploy port-forwards to: kwok's
    pods run no containers."""
    running = {fault: start(scorer_models / fault / "models") for fault in ("none", "errors")}
    yield running
    for server in running.values():
        server.stop()


@pytest.fixture(scope="session")
def cluster(tools: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    with control_plane(tools, tmp_path_factory.mktemp("control-plane")) as plane:
        yield plane


def own_virtualenv(tree: Path) -> None:
    """The tree's infra/.venv as `make install-infra` leaves it, without installing anything: a
    virtualenv whose path holds this repository's infra packages (the locked dependencies), then the
    tree's own infra/ and root. Every module the tree's scripts import is the tree's own, and nothing
    they write lands in this repository."""
    venv = tree / "infra" / ".venv"
    base = REPO / "infra" / ".venv" / "bin" / "python"
    subprocess.run([str(base), "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
    packages = subprocess.run(
        [str(base), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    own = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    Path(own, "twinserve.pth").write_text(f"{packages}\n{tree / 'infra'}\n{tree}\n")


def checkout(destination: Path, runtimes: list[str] | None = None) -> Path:
    """A fresh checkout: the repository's files as committed (and as changed in this working tree),
    nothing a previous run wrote, infra's virtualenv of its own (own_virtualenv), and the
    stand-in zips `make package` would leave. `runtimes` edits every stack file, as a fork commits it."""
    files = (
        subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, check=True
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, files):
        if (REPO / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, destination / name)
    return as_checkout(destination, runtimes)


def as_checkout(tree: Path, runtimes: list[str] | None = None) -> Path:
    """What a job's checkout has beside the files: infra's virtualenv of its own and the stand-in zips
    `make package` would leave. `runtimes` edits every stack file, as a fork commits it."""
    own_virtualenv(tree)
    (tree / "dist").mkdir()
    for arch in ("arm64", "x86_64"):
        (tree / "dist" / f"lambda-{arch}.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    if runtimes is not None:
        for stack_file in (tree / "environments").glob("Pulumi.*.yaml"):
            configure(tree, {"twinserve:runtimes": runtimes}, stack_file.name.split(".")[1])
    return tree


def configure(tree: Path, values: dict[str, Any], stack: str = "dev") -> None:
    """Set `values` in the tree's stack file, as a fork commits them."""
    stack_file = tree / "environments" / f"Pulumi.{stack}.yaml"
    data = yaml.safe_load(stack_file.read_text())
    data["config"] |= values
    stack_file.write_text(yaml.safe_dump(data, sort_keys=False))


@dataclass
class Result:
    code: int
    output: str
    changes: dict[str, int]


def engine(runner: Runner, tree: Path, command: str, stack: str, *args: str, **env: str) -> Result:
    """`python infra/engine.py COMMAND --stack STACK …` in `tree`, as the workflow's scripts run it."""
    changes = tree / f".changes-{command}-{time.monotonic_ns()}.json"
    result = subprocess.run(
        [str(tree / "infra" / ".venv" / "bin" / "python"), "infra/engine.py", command, "--stack", stack,
         "--changes", str(changes), *args],
        cwd=tree, env={**runner.env, **env}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    counts = json.loads(changes.read_text()) if changes.exists() else {}
    return Result(result.returncode, result.stdout + result.stderr, counts)


@dataclass
class AwsLocal:
    """S3 and KMS on loopback (moto): the state bucket and the secrets key a bootstrap would create."""

    env: dict[str, str]
    bucket: str
    key_alias: str

    @property
    def backend(self) -> str:
        return self.backend_of(self.bucket)

    @staticmethod
    def backend_of(bucket: str) -> str:
        return f"s3://{bucket}?use_path_style=true"

    def _api(self, verb: str) -> str:
        url = f"{self.env['AWS_ENDPOINT_URL']}/moto-api/recorder/{verb}"
        method = "GET" if verb == "download-recording" else "POST"
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=30) as answer:
            return answer.read().decode()

    @contextlib.contextmanager
    def recording(self) -> Iterator[list[dict]]:
        """Every request the block sends to S3 and KMS, as moto's recorder saw it (method, url, headers)."""
        requests: list[dict] = []
        self._api("reset-recording")
        self._api("start-recording")
        try:
            yield requests
        finally:
            self._api("stop-recording")
            requests += [json.loads(line) for line in self._api("download-recording").splitlines() if line]

    def new_bucket(self, name: str) -> str:
        _client("s3", self).create_bucket(Bucket=name)
        return name


@pytest.fixture(scope="session")
def aws_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AwsLocal]:
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("w") as sink:
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
        recording = {"MOTO_RECORDER_FILEPATH": str(log.with_name("recording.jsonl"))}
        server = subprocess.Popen(command, stdout=sink, stderr=sink, env={**os.environ, **recording})
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
    }
    try:
        local = AwsLocal(env, "twinserve-state", "alias/twinserve-state")
        _create_bucket_and_key(local)
        yield local
    finally:
        server.terminate()
        server.wait(timeout=15)


def _client(service: str, local: AwsLocal):
    import boto3

    return boto3.client(service, endpoint_url=local.env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip


def _create_bucket_and_key(local: AwsLocal) -> None:
    import botocore.exceptions

    deadline = time.monotonic() + 30
    while True:
        try:
            local.new_bucket(local.bucket)
            break
        except botocore.exceptions.EndpointConnectionError:
            assert time.monotonic() < deadline, "moto did not start within 30 s"
            time.sleep(0.2)
    kms = _client("kms", local)
    key = kms.create_key(Description="twinserve state secrets")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=local.key_alias, TargetKeyId=key)
