"""What every benchmark sends and checks: the artifact's own example, as an HTTP request and as a
Lambda event, and the answer TensorFlow gave it at export.

A benchmark that timed a 404 or a wrong answer would price the wrong thing, so every runtime's
answer is checked here before its figures count.
"""

from __future__ import annotations

import argparse
import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serving.artifact import locate
from serving.contract import ContractError, Metadata
from serving.errors import ArtifactError


class WrongAnswer(RuntimeError):
    """A runtime under measurement answered with an error or a different answer."""


@dataclass(frozen=True)
class Workload:
    artifact: Path
    metadata: Metadata

    @classmethod
    def from_root(cls, model_root: Path, name: str | None = None, version: int | None = None) -> Workload:
        """The model to measure: the only one under the root unless named, its latest version unless given."""
        try:
            artifact = locate(model_root, name, version)
            return cls(artifact, Metadata.read(artifact))
        except (ArtifactError, ContractError) as error:
            raise SystemExit(f"error: {error}") from None

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def path(self) -> str:
        return f"/v2/models/{self.name}/infer"

    @property
    def body(self) -> bytes:
        return json.dumps(self.metadata.example.v2_request()).encode()

    def check(self, who: str, status: int, body: bytes | str) -> None:
        """Refuse a non-2xx answer, or one that differs from TensorFlow's, naming the runtime."""
        text = body.decode(errors="replace") if isinstance(body, bytes) else body
        if not 200 <= status < 300:
            raise WrongAnswer(f"{who} answered {status} to {self.path}: {text[:300]}")
        try:
            answer = json.loads(text)
        except ValueError:
            raise WrongAnswer(f"{who} answered {status} with a body that is not JSON: {text[:300]}") from None
        wrong = self.metadata.example.mismatch(answer)
        if wrong:
            raise WrongAnswer(f"{who} answered the model's example differently from TensorFlow: {wrong}")

    def check_lambda(self, who: str, result: Any) -> None:
        """A Lambda handler's result (payload 2.0): its status code and its body."""
        if not isinstance(result, dict) or "statusCode" not in result:
            raise WrongAnswer(f"{who} returned {str(result)[:300]}, not an HTTP response")
        body = result.get("body", "")
        if result.get("isBase64Encoded"):
            body = base64.b64decode(body).decode()
        self.check(who, int(result["statusCode"]), body)

    def lambda_event(self) -> dict[str, Any]:
        """The example as a Function URL invocation (payload format 2.0), as Lambda hands it over."""
        host = "abcdefghijklmnopqrstuvwxyz0123.lambda-url.eu-west-1.on.aws"
        return {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": self.path,
            "rawQueryString": "",
            "headers": {"content-type": "application/json", "host": host},
            "requestContext": {
                "accountId": "anonymous",
                "apiId": host.split(".")[0],
                "domainName": host,
                "http": {
                    "method": "POST",
                    "path": self.path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "203.0.113.10",
                },
                "requestId": "bench",
                "routeKey": "$default",
                "stage": "$default",
            },
            "body": self.body.decode(),
            "isBase64Encoded": False,
        }

    def describe(self) -> dict[str, Any]:
        """The model, its signature and the example's size, for the report to name."""
        return {
            "name": self.name,
            "version": self.metadata.version,
            "inputs": [t.to_json() for t in self.metadata.inputs],
            "outputs": [t.to_json() for t in self.metadata.outputs],
            "example_rows": self.metadata.example.rows(),
        }


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--model-root, --model-name and --model-version, as every benchmark takes them."""
    parser.add_argument("--model-root", type=Path, required=True)
    parser.add_argument("--model-name", help="the model under the root (default: the only one)")
    parser.add_argument("--model-version", type=int, help="its version (default: the latest)")


def from_arguments(args: argparse.Namespace) -> Workload:
    return Workload.from_root(args.model_root, args.model_name, args.model_version)
