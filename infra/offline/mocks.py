"""Run a Pulumi program in-process under the SDK's mocks, recording every resource it declares.

No CLI, no cloud: what the engine would send to the providers is captured as it is sent
(camelCase inputs), with the few computed outputs the program reads faked plausibly.
The offline plan and the tests both run stacks through here.
"""

from __future__ import annotations

import asyncio
import runpy
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _sync_await

INFRA = Path(__file__).resolve().parents[1]  # the program's folder (Pulumi.yaml's main)
ROOT = INFRA.parent
ACCOUNT, REGION = "123456789012", "eu-west-1"
INVOKES = {
    "aws:index/getCallerIdentity:getCallerIdentity": {
        "accountId": ACCOUNT,
        "arn": f"arn:aws:iam::{ACCOUNT}:user/ci",
    },
    "aws:index/getRegion:getRegion": {"name": REGION, "region": REGION},
    "aws:index/getPartition:getPartition": {"partition": "aws", "dnsSuffix": "amazonaws.com"},
}


@dataclass(frozen=True)
class Declared:
    """One resource as the program declared it."""

    type: str
    name: str
    inputs: dict[str, Any]

    @property
    def is_kubernetes(self) -> bool:
        return self.type.startswith("kubernetes:") and "Provider" not in self.type


@dataclass
class Run:
    resources: list[Declared] = field(default_factory=list)
    calls: list[tuple[str, dict]] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, type_: str) -> list[Declared]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str) -> Declared:
        found = self.of_type(type_)
        assert len(found) == 1, f"expected one {type_}, found {len(found)}"
        return found[0]


# ARNs as AWS forms them, for the types whose ARN the programs read.
ARNS = {
    "aws:lambda/function:Function": "arn:aws:lambda:{r}:{a}:function:{name}",
    "aws:lambda/alias:Alias": "arn:aws:lambda:{r}:{a}:function:{functionName}:{name}",
    "aws:cloudwatch/logGroup:LogGroup": "arn:aws:logs:{r}:{a}:log-group:{name}",
    "aws:sqs/queue:Queue": "arn:aws:sqs:{r}:{a}:{name}",
    "aws:iam/role:Role": "arn:aws:iam::{a}:role/{name}",
    "aws:ecr/repository:Repository": "arn:aws:ecr:{r}:{a}:repository/{name}",
    "aws:kms/key:Key": "arn:aws:kms:{r}:{a}:key/{name}",
    "aws:s3/bucket:Bucket": "arn:aws:s3:::{bucket}",
    "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream": (
        "arn:aws:firehose:{r}:{a}:deliverystream/{name}"
    ),
}


def _arn(typ: str, name: str, inputs: dict[str, Any]) -> str:
    fields = {"name": name, "bucket": name, "functionName": name, **inputs}
    fields = {k: v for k, v in fields.items() if isinstance(v, str)}
    fallback = f"arn:aws:{typ.split(':')[1].split('/')[0]}:{{r}}:{{a}}:{name}"
    return ARNS.get(typ, fallback).format(
        r=REGION, a=ACCOUNT, **{k: v for k, v in fields.items() if k not in {"r", "a"}}
    )


def fake_outputs(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """The computed outputs the program reads; everything else the provider would compute stays unset."""
    state: dict[str, Any] = {"arn": _arn(typ, inputs.get("name") or inputs.get("namePrefix") or name, inputs)}
    if typ == "aws:lambda/function:Function":
        state |= {
            "version": "1",
            "invokeArn": f"{state['arn']}/invocations",
            "name": inputs.get("name", name),
        }
    elif typ == "aws:lambda/alias:Alias":
        state |= {"invokeArn": f"{state['arn']}/invocations"}
    elif typ == "aws:lambda/functionUrl:FunctionUrl":
        state["functionUrl"] = f"https://{name}.lambda-url.{REGION}.on.aws/"
    elif typ == "aws:apigatewayv2/api:Api":
        state |= {
            "apiEndpoint": f"https://{name}.execute-api.{REGION}.amazonaws.com",
            "executionArn": f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{name}",
        }
    elif typ == "aws:apigatewayv2/stage:Stage":
        state["invokeUrl"] = f"https://{name}.execute-api.{REGION}.amazonaws.com/"
    elif typ == "aws:ecr/repository:Repository":
        state["repositoryUrl"] = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{inputs.get('name', name)}"
    elif typ.startswith("kubernetes:"):
        state |= _kubernetes_outputs(typ, name, inputs)
    return state


def _kubernetes_outputs(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """An object's name, and a Service's virtual IP (the API server's pick)."""
    state: dict[str, Any] = {}
    if "metadata" in inputs:
        state["metadata"] = {"name": name, **inputs["metadata"]}
    if typ == "kubernetes:core/v1:Service":
        state["spec"] = {"clusterIP": "10.96.0.10", **inputs.get("spec", {})}
    return state


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.run = Run()

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        self.run.resources.append(Declared(args.typ, args.name, args.inputs))
        return f"{args.name}-id", {**args.inputs, **fake_outputs(args.typ, args.name, args.inputs)}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list]:
        """Invokes: the account, region and partition; any other returns nothing, recorded for the tests."""
        self.run.calls.append((args.token, args.args))
        return INVOKES.get(args.token, {}), []


def run_program(
    program: Path, project: str, stack: str, config: dict[str, str], secret_keys: tuple[str, ...] = ()
) -> Run:
    """Run `program/__main__.py` as the engine does, inside a root stack, and resolve its exports.
    `secret_keys` are the config keys the engine would report as set with --secret."""
    loop = asyncio.new_event_loop()  # one per run, closed after it: the SDK otherwise leaks one per stack
    asyncio.set_event_loop(loop)
    try:
        return _run(program, project, stack, config, secret_keys)
    finally:
        loop.close()
        asyncio.set_event_loop(None)


def _run(
    program: Path, project: str, stack: str, config: dict[str, str], secret_keys: tuple[str, ...]
) -> Run:
    mocks = RecordingMocks()
    set_all_config(config, list(secret_keys))
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False)
    pulumi_settings.ROOT.set(None)  # a fresh root stack, or exports land on the previous run's
    if str(program) not in sys.path:
        sys.path.insert(0, str(program))

    async def resolve() -> None:
        root = pulumi_settings.get_root_resource()
        exported = getattr(root, "outputs", {})
        for key, value in exported.items():
            mocks.run.outputs[key] = await pulumi.Output.from_input(value).future()

    def body() -> Any:
        runpy.run_path(str(program / "__main__.py"), run_name="__main__")
        return resolve()

    _sync_await(run_in_stack(body))
    return mocks.run
