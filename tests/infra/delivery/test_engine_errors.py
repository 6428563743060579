"""Lock contention is recognised on both backends through the Automation API's own mapping: the DIY
backend's "currently locked" (pkg/backend/diy/lock.go) and Pulumi Cloud's 409 (the service's answer)."""

from __future__ import annotations

import pytest
from engine import EngineError, LockedError, engine_error
from pulumi.automation._cmd import CommandResult
from pulumi.automation.errors import create_command_error

CLOUD = (
    "error: [409] Conflict: Another update is currently in progress.\n"
    "To learn more about possible reasons and resolution, visit https://www.pulumi.com/docs/..."
)
DIY = (
    "error: the stack is currently locked by 1 lock(s). Either wait for the other process(es) to end or "
    "delete the lock file with `pulumi cancel`.\n  s3://state/.pulumi/locks/organization/twinserve/dev/x.json"
)


@pytest.mark.parametrize("stderr", [CLOUD, DIY], ids=["pulumi-cloud-409", "diy-currently-locked"])
def test_a_held_lock_is_a_locked_error_on_either_backend(stderr: str) -> None:
    error = engine_error(create_command_error(CommandResult(stdout="", stderr=stderr, code=255)))
    assert isinstance(error, LockedError)
    assert "Conflict" in str(error) or "currently locked" in str(error)


def test_any_other_failure_is_an_engine_error_not_a_lock() -> None:
    error = engine_error(
        create_command_error(CommandResult(stdout="", stderr="error: access denied", code=255))
    )
    assert type(error) is EngineError
