"""`make plan ENV=<env>`: the stack rendered offline into build/plan/<env>/, for reviewers and fork PRs.

Runs the program under the SDK's mocks (no CLI, no cloud) and writes the Kubernetes
manifests as YAML, every AWS resource's inputs as JSON, the outputs, and summary.md.
The directory is written beside its target and swapped in whole, so a failed plan
never leaves a half-written one.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from program.settings import ANY_IMAGE, PACKAGE_DECISION, PROJECT, SettingsError, stack_config

from offline import terraform_plan
from offline.mocks import ROOT, Declared, Run, run_program

INFRA = Path(__file__).resolve().parents[1]  # the program's folder (Pulumi.yaml's main)


def plain(value: Any) -> Any:
    """Mock inputs as a provider would see them: integral floats as ints, archives as their path."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if hasattr(value, "path") and type(value).__name__.endswith("Archive"):
        return {"archive": Path(value.path).name}
    return value


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def manifest(resource: Declared) -> dict[str, Any]:
    body = plain(resource.inputs)
    return {"apiVersion": body.pop("apiVersion"), "kind": body.pop("kind"), **body}


def run_stack(env: str, image: str, zip_dir: Path) -> Run:
    config = stack_config(
        ROOT / "environments" / f"Pulumi.{env}.yaml",
        PROJECT,
        # Offline, one reference stands in for the image and both of its platform manifests.
        {"image": image, "lambdaImageArm64": image, "lambdaImageX8664": image, "lambdaZipDir": str(zip_dir)},
    )
    return run_program(INFRA, PROJECT, env, config)


def write_plan(run: Run, env: str, image: str, target: Path, zip_dir: Path) -> None:
    (target / "kubernetes").mkdir(parents=True)
    (target / "aws").mkdir()
    for resource in run.resources:
        if resource.is_kubernetes:
            body = manifest(resource)
            name = f"{slug(body['kind'])}-{body['metadata']['name']}.yaml"
            (target / "kubernetes" / name).write_text(yaml.safe_dump(body, sort_keys=True))
        elif resource.type.startswith("aws:"):
            name = f"{slug(resource.type.rsplit(':', 1)[1])}-{resource.name}.json"
            (target / "aws" / name).write_text(
                json.dumps(plain(resource.inputs), indent=2, sort_keys=True) + "\n"
            )
    aws = [Declared(r.type, r.name, plain(r.inputs)) for r in run.resources if r.type.startswith("aws:")]
    (target / "aws" / "terraform-plan.json").write_text(json.dumps(terraform_plan.plan(aws), indent=2) + "\n")
    (target / "outputs.json").write_text(json.dumps(plain(run.outputs), indent=2, sort_keys=True) + "\n")
    (target / "summary.md").write_text(summary(run, env, image, zip_dir))


def exposure(run: Run) -> list[str]:
    lines = []
    for service in run.of_type("kubernetes:core/v1:Service"):
        kind = service.inputs["spec"].get("type", "ClusterIP")
        reach = "internet-facing load balancer" if kind == "LoadBalancer" else "inside the cluster only"
        lines.append(f"- Kubernetes Service `{service.inputs['metadata']['name']}`: {kind}, {reach}")
    for url in run.of_type("aws:lambda/functionUrl:FunctionUrl"):
        auth = url.inputs["authorizationType"]
        warning = (
            " **public: anyone on the internet can invoke it**"
            if auth == "NONE"
            else " (SigV4-signed callers)"
        )
        lines.append(f"- Lambda Function URL: authorization {auth}{warning}")
    for stage in run.of_type("aws:apigatewayv2/stage:Stage"):
        limits = plain(stage.inputs["defaultRouteSettings"])
        lines.append(
            f"- HTTP API: public, throttled at {limits['throttlingRateLimit']} req/s "
            f"(burst {limits['throttlingBurstLimit']})"
        )
    return lines or ["- nothing is exposed"]


def key_settings(env: str) -> list[str]:
    """What this environment sets itself; everything else is Pulumi.yaml's default."""
    config = yaml.safe_load((ROOT / "environments" / f"Pulumi.{env}.yaml").read_text()).get("config") or {}
    return [f"| `{key}` | `{value}` |" for key, value in config.items()] or ["| (none) | |"]


def lambda_package(run: Run, zip_dir: Path) -> list[str]:
    """Which package the function runs, and why the image when `make package` built no zip."""
    functions = run.of_type("aws:lambda/function:Function")
    if not functions:
        return []
    if functions[0].inputs.get("packageType") != "Image":
        return ["Lambda runs the LiteRT zip.", ""]
    try:
        reason = json.loads((zip_dir / PACKAGE_DECISION).read_text()).get("reason", "")
    except (OSError, ValueError):
        reason = ""
    return [f"Lambda runs the model image{f': {reason}' if reason else ''}.", ""]


def summary(run: Run, env: str, image: str, zip_dir: Path) -> str:
    counts = Counter(r.type for r in run.resources)
    rows = [f"| `{t}` | {n} |" for t, n in sorted(counts.items())]
    outputs = [f"| `{k}` | `{plain(v)}` |" for k, v in sorted(run.outputs.items())]
    note = " (a placeholder: the deploy workflow passes the pushed digest)" if image == ANY_IMAGE else ""
    return "\n".join(
        [
            f"# Plan: {env}",
            "",
            f"{len(run.resources)} resources. Image: `{image}`{note}.",
            "",
            *lambda_package(run, zip_dir),
            "## Exposure",
            "",
            *exposure(run),
            "",
            "## Settings this environment sets",
            "",
            "| key | value |",
            "|---|---|",
            *key_settings(env),
            "",
            "## Resources by type",
            "",
            "| type | count |",
            "|---|---:|",
            *rows,
            "",
            "## Outputs",
            "",
            "| output | value |",
            "|---|---|",
            *outputs,
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env", required=True, help="dev, staging, prod: environments/Pulumi.<env>.yaml")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "plan")
    parser.add_argument("--image", default=ANY_IMAGE, help="the image by digest")
    parser.add_argument("--zip-dir", type=Path, default=ROOT / "dist", help="where lambda-<arch>.zip are")
    args = parser.parse_args(argv)
    try:
        run = run_stack(args.env, args.image, args.zip_dir.resolve())
    except (SettingsError, FileNotFoundError) as error:
        print(f"error: {args.env}: {error}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / args.env
    with tempfile.TemporaryDirectory(dir=args.out, prefix=f".{args.env}-") as staging:
        write_plan(run, args.env, args.image, Path(staging) / args.env, args.zip_dir.resolve())
        shutil.rmtree(target, ignore_errors=True)
        (Path(staging) / args.env).rename(target)
    print(f"{target}: {len(run.resources)} resources")
    return 0


if __name__ == "__main__":
    sys.exit(main())
