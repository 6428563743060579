"""Stacks run in-process under Pulumi's mocks (infra/offline/mocks.py), once per environment and shared."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# infra/ and the repository root are on infra's virtualenv's path (make install-infra).
from offline.mocks import Run, run_program
from program.settings import PROJECT, SECRET_KEYS, stack_config

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"

ENVS = ["dev", "staging", "prod"]
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/twinserve@sha256:" + "ab" * 32
# The image's platform manifests, which a Lambda image function runs (Lambda takes no index).
PLATFORM_IMAGES = {
    "arm64": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/twinserve@sha256:" + "a1" * 32,
    "x86_64": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/twinserve@sha256:" + "a2" * 32,
}


def pytest_configure(config: pytest.Config) -> None:
    # Pulumi's SDK opens an event loop in each executor thread it registers resources from and never
    # closes it; only those leaks are ignored.
    for pattern in (
        r"Exception ignored in. <function BaseEventLoop.__del__",
        r"Exception ignored in. <socket.socket fd=\d+, family=1",
    ):
        config.addinivalue_line("filterwarnings", f"ignore:{pattern}:pytest.PytestUnraisableExceptionWarning")


@pytest.fixture(scope="session")
def zip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stand-ins for `make package`'s zips: the mocks never read them, the settings check they exist."""
    directory = tmp_path_factory.mktemp("dist")
    for arch in ("arm64", "x86_64"):
        (directory / f"lambda-{arch}.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    return directory


@pytest.fixture(scope="session")
def config_for(zip_dir: Path) -> Callable[..., dict[str, str]]:
    def build(env: str, **overrides: Any) -> dict[str, str]:
        base = {
            "image": IMAGE,
            "lambdaImageArm64": PLATFORM_IMAGES["arm64"],
            "lambdaImageX8664": PLATFORM_IMAGES["x86_64"],
            "lambdaZipDir": str(zip_dir),
        }
        return stack_config(REPO / "environments" / f"Pulumi.{env}.yaml", PROJECT, base | overrides)

    return build


@pytest.fixture(scope="session")
def run_stack(config_for: Callable[..., dict[str, str]]) -> Callable[..., Run]:
    cache: dict[str, Run] = {}

    def run(env: str, **overrides: Any) -> Run:
        if overrides:
            secrets = tuple(f"{PROJECT}:{key}" for key in overrides if key in SECRET_KEYS)
            return run_program(INFRA, PROJECT, env, config_for(env, **overrides), secrets)
        if env not in cache:
            cache[env] = run_program(INFRA, PROJECT, env, config_for(env))
        return cache[env]

    return run


@pytest.fixture(params=ENVS)
def env(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def stack(env: str, run_stack: Callable[..., Run]) -> Run:
    return run_stack(env)
