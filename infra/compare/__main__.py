"""`make compare`: price every environment on both runtimes from its settings and the measured figures.

Writes build/compare/report.md and one chart per environment (<env>.png).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml
from program.settings import (
    IMAGE_MIN_MEMORY_MB,
    PROJECT,
    ROOT,
    LambdaSettings,
    Settings,
    SettingsError,
    read_environment,
    stack_config,
)

from compare.profiles import Traffic, kubernetes_profile, lambda_profile
from compare.report import chart, evaluate, render

PRICES = Path(__file__).resolve().parent / "prices.yaml"


ORDER = ["dev", "staging", "prod"]
REQUIRED_PRICES = {
    "": [
        "hours_per_month",
        "reviewed",
        "http_api_requests_per_million",
        "cloudwatch_logs_ingestion_per_gb",
        "lambda_log_bytes_per_request",
        "lambda",
        "kubernetes",
    ],
    "lambda": [
        "requests_per_million",
        "gb_second",
        "provisioned_gb_second",
        "provisioned_duration_gb_second",
        "free_tier",
        "include_free_tier",
    ],
    "kubernetes": [
        "control_plane_hourly",
        "control_plane_share",
        "node",
        "load_balancer_hourly",
        "load_balancer_lcu_hourly",
    ],
}


def load_prices(path: Path) -> dict:
    """The prices file, refused with the missing key named rather than failing halfway through a report."""
    prices = yaml.safe_load(path.read_text()) or {}
    for section, keys in REQUIRED_PRICES.items():
        table = prices.get(section, {}) if section else prices
        missing = [k for k in keys if not isinstance(table, dict) or k not in table]
        if missing:
            where = f"{section}." if section else ""
            raise ValueError(f"{path} lacks {', '.join(where + k for k in missing)}")
    return prices


def environments() -> list[str]:
    """Every stack file's environment, in promotion order."""
    names = [p.name.split(".")[1] for p in (ROOT / "environments").glob("Pulumi.*.yaml")]
    return sorted(names, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))


def environment_settings(name: str, measured: dict) -> tuple[Settings, list[str]]:
    """An environment's settings as it would deploy this model: the Lambda package the measurement
    built (no zip: the image), and at least the memory the image needs, with a note saying so."""
    stack_file = ROOT / "environments" / f"Pulumi.{name}.yaml"
    stated = stack_config(stack_file, PROJECT)
    measured_package = measured["lambda_package"]["package"]
    if stated.get(f"{PROJECT}:lambdaPackage") == "zip" and measured_package == "image":
        raise SettingsError(
            f"{stack_file.name}: {PROJECT}:lambdaPackage is zip, but this model has no zip: "
            f"{measured['lambda_package']['reason']}"
        )
    package = "image" if stated.get(f"{PROJECT}:lambdaPackage") == "image" else measured_package
    overrides: dict[str, object] = {"lambdaPackage": package}
    memory = stated.get(f"{PROJECT}:lambdaMemoryMb", str(LambdaSettings().memory_mb))
    raised = package == "image" and memory.isdigit() and int(memory) < IMAGE_MIN_MEMORY_MB
    if raised:
        overrides["lambdaMemoryMb"] = IMAGE_MIN_MEMORY_MB
    settings = read_environment(name, overrides)
    notes = []
    if raised and "lambda" in settings.runtimes:
        notes.append(
            f"{PROJECT}:lambdaMemoryMb is {memory} for {name}, too little for the model image "
            f"(the deploy refuses it); Lambda is priced at {IMAGE_MIN_MEMORY_MB} MB, the least to set"
        )
    return settings, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--measurements", type=Path, required=True, help="from `python -m serving.tools.bench.runtimes`"
    )
    parser.add_argument("--prices", type=Path, default=PRICES)
    parser.add_argument("--env", action="append", help="environments to price (default: every one)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "compare")
    args = parser.parse_args(argv)
    try:
        measured = json.loads(args.measurements.read_text())
        prices = load_prices(args.prices)
        envs = []
        for name in args.env or environments():
            settings, notes = environment_settings(name, measured)
            traffic = Traffic(settings.traffic.requests_per_month, settings.traffic.peak_rps)
            envs.append(
                evaluate(
                    name,
                    prices,
                    traffic,
                    lambda_profile(settings, measured),
                    kubernetes_profile(settings, measured),
                    settings.function.package,
                    notes,
                )
            )
    except KeyError as missing:
        print(f"error: {args.measurements} lacks the measurement {missing}", file=sys.stderr)
        return 1
    except (OSError, ValueError, yaml.YAMLError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    for env in envs:
        chart(env, prices, args.out / f"{env.name}.png")
    (args.out / "report.md").write_text(render(envs, measured, prices) + "\n")
    model = measured["model"]
    print(f"{args.out / 'report.md'}: {model['name']} v{model['version']}, {', '.join(e.name for e in envs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
