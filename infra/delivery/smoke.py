"""`make smoke ENV=<env>`: after an up, prove each deployed runtime serves the built model: V2 ready,
its metadata at the built version, the model's own example answered as TensorFlow answered it, and
its golden set replayed: every answer TensorFlow's within the contract's tolerance and, when the
rows are labelled, an accuracy that meets the evaluation gate.

Reads the stack's outputs (`pulumi stack output --json`) and the built model's metadata.json and
golden set (`dist/model-metadata.json` and `dist/model-golden.json`, beside the Lambda zips), so any
model is checked with valid inputs:
strings for a text model, booleans for a boolean input. Each runtime is reached where
`delivery/targets.py` says (a port-forward to the Service; the endpoint, SigV4-signed with the job's
OIDC credentials when it is AWS_IAM). Any failure exits non-zero with the runtime and check
named, which stops the promotion to the next environment.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from delivery.errors import DeliveryError, SmokeError
from delivery.targets import Send, Targets, plain_send
from serving import contract


@dataclass(frozen=True)
class Example:
    """The built model's name, version, example (request and TensorFlow's answer) and golden set, read
    from its metadata.json and the golden set beside it through the artifact contract."""

    model: str
    version: str
    example: contract.Example
    golden: contract.GoldenSet

    @property
    def request(self) -> bytes:
        return json.dumps(self.example.v2_request()).encode()

    @classmethod
    def read(cls, path: Path) -> Example:
        golden = contract.golden_beside(path)
        for needed in (path, golden):
            if not needed.exists():
                raise SmokeError(f"{needed} not found: `make package` writes it beside the Lambda zips")
        try:
            metadata = contract.Metadata.read(path)
            return cls(
                metadata.name,
                str(metadata.version),
                metadata.example,
                contract.GoldenSet.read(golden, metadata),
            )
        except contract.ContractError as error:
            raise SmokeError(str(error)) from None

    def mismatch(self, answer: Any) -> str:
        return self.example.mismatch(answer)


def wait_ready(runtime: str, base: str, send: Send, wait_seconds: float) -> None:
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            status, _ = send("GET", f"{base}{contract.READY_PATH}", None)
        except OSError as error:
            status = f"unreachable ({error})"
        if status == 200:
            break
        if time.monotonic() > deadline:
            raise SmokeError(
                f"{runtime}: {base}{contract.READY_PATH} answered {status} for {wait_seconds:.0f} s"
            )
        time.sleep(2)


def check(runtime: str, base: str, example: Example, send: Send, wait_seconds: float) -> str:
    base = base.rstrip("/")
    wait_ready(runtime, base, send, wait_seconds)
    model = example.model
    status, body = send("GET", f"{base}/v2/models/{model}", None)
    if status != 200:
        raise SmokeError(f"{runtime}: model metadata answered {status}: {body[:200]!r}")
    versions = json.loads(body).get("versions", [])
    if example.version not in versions:
        raise SmokeError(f"{runtime}: serves {model} versions {versions}, not the built {example.version}")
    status, body = send("POST", f"{base}/v2/models/{model}/infer", example.request)
    if status != 200:
        raise SmokeError(f"{runtime}: inference of the model's example answered {status}: {body[:200]!r}")
    wrong = example.mismatch(json.loads(body))
    if wrong:
        raise SmokeError(f"{runtime}: the model's example got a different answer: {wrong}")
    replayed = replay(runtime, base, example, send)
    return f"{runtime}: ready, metadata, the model's example and {replayed} at {base}"


def replay(runtime: str, base: str, example: Example, send: Send) -> str:
    """The golden set through the runtime, judged on every answer and, with labels, on accuracy."""
    golden, answers = example.golden, []
    for index, request in enumerate(golden.requests):
        body = json.dumps(request.v2_request()).encode()
        status, answer = send("POST", f"{base}/v2/models/{example.model}/infer", body)
        if status != 200:
            raise SmokeError(
                f"{runtime}: the golden set's request {index + 1} of {len(golden.requests)} answered "
                f"{status}: {answer[:200]!r}"
            )
        answers.append(json.loads(answer))
    wrong = golden.judge(answers)
    if wrong:
        raise SmokeError(f"{runtime}: the golden set's {wrong}")
    served = golden.accuracy_of(answers)
    scored = "" if served is None else f", accuracy {served:.4f} ≥ {golden.required_accuracy:.4f}"
    return f"its golden set ({golden.rows} rows{scored}) answered as expected"


def smoke(
    outputs: dict[str, Any], example: Example, wait_seconds: float, targets: Targets | None = None
) -> list[str]:
    """Every runtime the stack deploys, reached where `targets` says."""
    targets = targets or Targets()
    model, results = outputs["modelName"], []
    if model != example.model:
        raise SmokeError(f"the stack serves {model!r}, but the built model is {example.model!r}")
    if "kubernetes" in outputs.get("runtimes", []):
        with targets.kubernetes(outputs) as base:
            results.append(check("kubernetes", base, example, plain_send, wait_seconds))
    if "lambda" in outputs.get("runtimes", []):
        endpoint, send = targets.function(outputs)
        results.append(check("lambda", endpoint, example, send, wait_seconds))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("outputs", type=Path, help="`pulumi stack output --json` of the stack")
    parser.add_argument(
        "--wait-seconds", type=float, default=180, help="how long a rollout may take to be ready"
    )
    parser.add_argument(
        "--metadata",
        type=Path,
        default=Path("dist/model-metadata.json"),
        help="the built model's metadata.json, whose example is sent and its answer checked",
    )
    parser.add_argument("--kubernetes-url", help="the model's Service base URL instead of a port-forward")
    args = parser.parse_args(argv)
    try:
        outputs = json.loads(args.outputs.read_text())
        example, targets = Example.read(args.metadata), Targets(kubernetes_url=args.kubernetes_url)
        for line in smoke(outputs, example, args.wait_seconds, targets):
            print(line)
    except KeyError as missing:
        print(f"smoke test failed: the stack outputs lack {missing}", file=sys.stderr)
        return 1
    except (DeliveryError, json.JSONDecodeError, OSError) as error:
        print(f"smoke test failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
