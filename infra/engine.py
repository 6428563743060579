"""Runs one stack through the Pulumi engine — preview, up or destroy — with the policy pack.

The Automation API's inline program runs `infra/__main__.py` in this process, so the CLI needs no
Python language host: the same path runs on a GitHub runner, on a laptop and in the real-engine
tests. The CLI still reads Pulumi.yaml, the stack files in environments/ and the backend, validates
config against the schema, runs the providers and the policy pack, and keeps the state.

    python infra/engine.py preview --stack dev --config image=…@sha256:…
    python infra/engine.py up --stack dev --create --secrets-provider awskms://alias/…
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import runpy
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pulumi import automation as auto

PROJECT = "twinserve"
ROOT = Path(__file__).resolve().parent.parent
PROGRAM = ROOT / "infra" / "__main__.py"
# An executable file: the engine launches it as a binary analyzer (a directory needs the Python host).
POLICY_PACK = ROOT / "infra" / "policy" / "analyzer"
ENGINE_ENV = {
    # A stack created on another runner has no secrets provider in this checkout's stack file: use the
    # one its state records instead of minting a passphrase manager (pulumi/pulumi#16412).
    "PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER": "true",
    # The pack runs under the interpreter running this program (infra's virtualenv).
    "TWINSERVE_POLICY_PYTHON": sys.executable,
}


class EngineError(RuntimeError):
    """The engine refused or failed; the message is its own output."""


class LockedError(EngineError):
    """Another update holds the stack's lock: the DIY backends' "currently locked", Pulumi Cloud's
    `[409] Conflict`, both recognised by the Automation API as ConcurrentUpdateError."""


# What every deploy of a stack sets besides a step's own inputs, from the job's environment.
DEPLOY_ENV_CONFIG = {
    "AWS_REGION": "aws:region",
    "COMMIT": "commit",
    "LAMBDA_IMAGE_ARM64": "lambdaImageArm64",
    "LAMBDA_IMAGE_X86_64": "lambdaImageX8664",
}


def deploy_config(environ: dict[str, str]) -> dict[str, str]:
    """The job's config (the region every resource is in, the commit, the Lambda image manifests)."""
    if not environ.get("AWS_REGION"):
        raise EngineError(
            "AWS_REGION is not set: the repository variable AWS_REGION (set by make bootstrap) names the "
            "region of every resource"
        )
    return {key: environ[name] for name, key in DEPLOY_ENV_CONFIG.items() if environ.get(name)}


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """The CLI's failures as EngineError (LockedError for a held lock), its own output the message."""
    try:
        yield
    except auto.errors.CommandError as error:
        raise engine_error(error) from None


def engine_error(error: auto.errors.CommandError) -> EngineError:
    message = str(error).partition("\n stderr: ")[2].strip() or str(error)
    return (
        LockedError(message) if isinstance(error, auto.errors.ConcurrentUpdateError) else EngineError(message)
    )


def inline(path: Path) -> auto.PulumiFn:
    """The program file run as the engine's inline program, with its folder importable."""

    def program() -> None:
        if str(path.parent) not in sys.path:
            sys.path.insert(0, str(path.parent))
        runpy.run_path(str(path), run_name="__main__")

    return program


def open_stack(
    name: str, *, create: bool, secrets_provider: str | None, program: Path = PROGRAM
) -> auto.Stack:
    """The stack in the logged-in backend (PULUMI_BACKEND_URL or `pulumi login`), created only if asked."""
    if shutil.which("pulumi") is None:
        raise EngineError("the Pulumi CLI is not on PATH: install it, or run `make tools` and use its pulumi")
    options = auto.LocalWorkspaceOptions(
        work_dir=str(ROOT), secrets_provider=secrets_provider, env_vars=ENGINE_ENV
    )
    try:
        if create:
            return auto.create_or_select_stack(
                name, project_name=PROJECT, program=inline(program), opts=options
            )
        return auto.select_stack(name, project_name=PROJECT, program=inline(program), opts=options)
    except auto.errors.StackNotFoundError:
        raise EngineError(f"no stack named '{name}' in this backend; the first deploy creates it") from None
    except auto.errors.CommandError as error:
        raise engine_error(error) from None


def set_config(stack: auto.Stack, pairs: list[str]) -> None:
    """All in one CLI call; a key given twice takes its last value (a rollout step's over the job's)."""
    values: dict[str, auto.ConfigValue] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise EngineError(f"--config {pair!r}: expected KEY=VALUE")
        values[key] = auto.ConfigValue(value=value)
    if values:
        stack.set_all_config(values)


def run(command: str, stack: auto.Stack) -> dict[str, int]:
    """One operation, its output streamed as the CLI prints it; returns its count of each change."""
    policy = [str(POLICY_PACK)]
    with translated():
        if command == "preview":
            preview = stack.preview(on_output=print, policy_packs=policy, diff=True, color="never")
            return {str(op): count for op, count in preview.change_summary.items()}
        if command == "up":
            result = stack.up(on_output=print, policy_packs=policy, diff=True, color="never")
        else:
            result = stack.destroy(on_output=print, color="never")
        return dict(result.summary.resource_changes or {})


def outputs(stack: auto.Stack) -> dict[str, Any]:
    """The stack's outputs as plain values (secrets included: the deploy reads its own stack)."""
    with translated():
        return {key: output.value for key, output in stack.outputs().items()}


def pending_operations(stack: auto.Stack) -> list[dict[str, Any]]:
    """What an interrupted update left half-done (a CREATE whose object may exist unrecorded)."""
    with translated():
        deployment = stack.export_stack().deployment or {}
    return list(deployment.get("pending_operations") or [])


def clear_lock(stack: auto.Stack) -> None:
    """`pulumi cancel`: only for a lock no live process holds."""
    with translated():
        stack.cancel()


def clear_pending_creates(stack: auto.Stack) -> None:
    """`pulumi refresh --clear-pending-creates`: drop them from the state once their objects are gone."""
    with translated():
        stack.refresh(clear_pending_creates=True, on_output=print, color="never")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=("preview", "up", "destroy"))
    parser.add_argument("--stack", required=True, help="the stack (environment), e.g. dev or org/dev")
    parser.add_argument(
        "--config", action="append", default=[], metavar="KEY=VALUE", help="set before running"
    )
    parser.add_argument("--create", action="store_true", help="create the stack if it does not exist")
    parser.add_argument("--secrets-provider", help="for a stack created here (awskms://…, passphrase)")
    parser.add_argument("--program", type=Path, default=PROGRAM, help="the program file (default: the stack)")
    parser.add_argument("--changes", type=Path, help="write the count of each change here as JSON")
    parser.add_argument(
        "--deploy-env",
        action="store_true",
        help="also set what every deploy sets from the environment: " + ", ".join(DEPLOY_ENV_CONFIG),
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("PULUMI_SKIP_UPDATE_CHECK", "true")
    try:
        stack = open_stack(
            args.stack,
            create=args.create,
            secrets_provider=args.secrets_provider,
            program=args.program.resolve(),
        )
        job = [f"{k}={v}" for k, v in deploy_config(dict(os.environ)).items()] if args.deploy_env else []
        set_config(stack, job + args.config)
        changes = run(args.command, stack)
    except EngineError as error:
        print(f"error: {args.command} of stack '{args.stack}' failed:\n{error}", file=sys.stderr)
        return 1
    if args.changes:
        args.changes.write_text(json.dumps(changes, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
