"""The comparison as a reader sees it: per environment a table, a break-even, a recommendation, a chart."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from compare.cost import Cost, KubernetesProfile, LambdaProfile, break_even, kubernetes_cost, lambda_cost
from compare.profiles import FULL_VCPU_MB, Traffic

# Traffic the chart spans, in requests per month.
CHART_RANGE = (1e4, 1e10)


@dataclass(frozen=True)
class Environment:
    name: str
    traffic: Traffic
    function: LambdaProfile
    pod: KubernetesProfile
    lambda_cost: Cost
    kubernetes_cost: Cost
    break_even: float | None
    package: str = "zip"  # the Lambda package this environment gets for the model: zip or image
    notes: tuple[str, ...] = ()

    @property
    def lambda_start(self) -> str:
        return LAMBDA_STARTS[self.package]


# The Lambda package → its cold start's name in the measurements, and how the report names it.
LAMBDA_STARTS = {"zip": "Lambda zip (LiteRT)", "image": "Lambda image (TensorFlow)"}
PACKAGE_NAMES = {"zip": "LiteRT zip", "image": "TensorFlow image"}


def evaluate(
    name: str,
    prices: dict[str, Any],
    traffic: Traffic,
    fn: LambdaProfile,
    pod: KubernetesProfile,
    package: str = "zip",
    notes: list[str] | None = None,
) -> Environment:
    seconds = prices["hours_per_month"] * 3600
    peak_ratio = (
        traffic.peak_rps / (traffic.requests_per_month / seconds) if traffic.requests_per_month else 1.0
    )
    return Environment(
        name,
        traffic,
        fn,
        pod,
        lambda_cost(prices, fn, traffic.requests_per_month),
        kubernetes_cost(prices, pod, traffic.requests_per_month, traffic.peak_rps),
        break_even(prices, fn, pod, peak_ratio),
        package,
        tuple(notes or ()),
    )


def money(value: float) -> str:
    return f"${value:,.2f}"


def count(value: float) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:,.3g}{unit}"
    return f"{value:,.0f}"


def recommendation(env: Environment, measured: dict[str, Any]) -> list[str]:
    cheaper = "Lambda" if env.lambda_cost.total <= env.kubernetes_cost.total else "Kubernetes"
    other = env.kubernetes_cost.total if cheaper == "Lambda" else env.lambda_cost.total
    ours = min(env.lambda_cost.total, env.kubernetes_cost.total)
    reasons = [
        f"**{cheaper}**: {money(ours)} a month against {money(other)} at the expected "
        f"{count(env.traffic.requests_per_month)} requests."
    ]
    if env.break_even is None:
        reasons.append("Kubernetes does not become cheaper at any traffic up to 1 trillion requests a month.")
    elif env.break_even == 0:
        reasons.append("Kubernetes is cheaper at any traffic.")
    else:
        factor = env.break_even / max(env.traffic.requests_per_month, 1)
        change = (
            f"would have to grow {factor:,.1f}x" if factor >= 1 else f"is already {1 / factor:,.1f}x past it"
        )
        reasons.append(
            f"Kubernetes becomes cheaper above {count(env.break_even)} requests a month: traffic {change}."
        )
    init = cold_start(measured, env.lambda_start)["median_seconds"]
    reasons.append(
        f"Cold starts: a new Lambda environment adds {init * 1000:,.0f} ms ({env.package} init) to its first "
        f"request"
        + (
            f", none for the first {env.function.provisioned} concurrent (provisioned)"
            if env.function.provisioned
            else ""
        )
        + f"; a new pod is ready in {measured['server_start_seconds']:.1f} s but is started ahead of load."
    )
    reasons += [f"Warning: {note}." for note in (*env.notes, *env.kubernetes_cost.notes)]
    return reasons


def chart(env: Environment, prices: dict[str, Any], path: Path) -> None:
    """Monthly cost against traffic for both runtimes on log axes, break-even and expected traffic marked."""
    low, high = CHART_RANGE
    points = [low * (high / low) ** (i / 120) for i in range(121)]
    ratio = env.traffic.peak_rps / max(
        env.traffic.requests_per_month / (prices["hours_per_month"] * 3600), 1e-9
    )
    lam = [lambda_cost(prices, env.function, r).total for r in points]
    k8s = [
        kubernetes_cost(prices, env.pod, r, r / (prices["hours_per_month"] * 3600) * ratio).total
        for r in points
    ]
    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=110)
    axes.plot(points, lam, label="Lambda", color="#d97706")
    axes.plot(points, k8s, label="Kubernetes", color="#2563eb")
    axes.axvline(env.traffic.requests_per_month, color="grey", linestyle=":", label="expected traffic")
    if env.break_even:
        axes.axvline(
            env.break_even, color="black", linestyle="--", label=f"break-even ({count(env.break_even)})"
        )
    axes.set(
        xscale="log",
        yscale="log",
        xlabel="requests per month",
        ylabel="USD per month",
        title=f"{env.name}: monthly cost against traffic",
    )
    axes.grid(True, which="major", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, metadata={"Software": None})
    plt.close(figure)


def cost_rows(env: Environment) -> list[str]:
    rows = [f"| Lambda: {line} | {money(value)} |" for line, value in env.lambda_cost.lines.items() if value]
    rows += [
        f"| Kubernetes: {line} | {money(value)} |"
        for line, value in env.kubernetes_cost.lines.items()
        if value
    ]
    return rows


def profile_line(env: Environment) -> str:
    fn, pod, traffic = env.function, env.pod, env.traffic
    return (
        f"Traffic profile: {count(traffic.requests_per_month)} requests a month, "
        f"peak {traffic.peak_rps:g} req/s. Lambda: {fn.memory_mb} MB {fn.architecture}, "
        f"handler {fn.duration_ms:.2f} ms at that size, billed {max(1, math.ceil(fn.duration_ms))} ms. "
        f"Kubernetes: {pod.min_replicas} to {pod.max_replicas} pods of {pod.cpu_request:g} vCPU, "
        f"{pod.requests_per_second_per_pod:,.0f} req/s each at their request."
    )


def cold_start(measured: dict[str, Any], name: str) -> dict[str, Any]:
    starts = {s["name"]: s for s in measured["cold_starts"]}
    if name not in starts:
        raise KeyError(f"cold_starts: {name}")
    return starts[name]


def runtime_table(env: Environment, measured: dict[str, Any]) -> list[str]:
    start = cold_start(measured, env.lambda_start)
    handler = measured["warm"][f"lambda_{env.package}_handler"]
    pod = measured["warm"]["kubernetes_pod"]
    return [
        f"| | Lambda ({PACKAGE_NAMES[env.package]}) | Kubernetes (TensorFlow image) |",
        "|---|---:|---:|",
        f"| monthly cost | **{money(env.lambda_cost.total)}** | **{money(env.kubernetes_cost.total)}** |",
        f"| cold start | {start['median_seconds'] * 1000:,.0f} ms ({env.package} init) "
        f"| {measured['server_start_seconds']:.2f} s (pod start to ready) |",
        f"| warm latency p50 / p99 | {handler['p50_ms']:.3f} / {handler['p99_ms']:.3f} ms (handler) "
        f"| {pod['p50_ms']:.2f} / {pod['p99_ms']:.2f} ms (HTTP, {pod['concurrency']} clients) |",
    ]


def section(env: Environment, measured: dict[str, Any]) -> list[str]:
    return [
        f"## {env.name}", "", profile_line(env), "", *runtime_table(env, measured), "",
        "| cost line | monthly |", "|---|---:|", *cost_rows(env), "",
        "**Recommendation.** " + " ".join(recommendation(env, measured)), "",
        f"![{env.name}]({env.name}.png)", "",
    ]  # fmt: skip


def signature(tensors: list[dict[str, Any]]) -> str:
    return ", ".join(f"`{t['name']}` {t['datatype']} {t['shape']}" for t in tensors)


def deployables(measured: dict[str, Any]) -> str:
    sizes, package = measured["sizes"], measured["lambda_package"]
    image = f"the image's contents {sizes['image_installed_mib']:,.0f} MiB"
    if package["package"] == "image":
        return f"no Lambda zip ({package['reason']}: the function runs the model image too), {image}"
    return (
        f"the Lambda zip {sizes['zip_mib']:.1f} MiB ({sizes['zip_unzipped_mib']:.0f} MiB unzipped), {image}"
    )


def render(envs: list[Environment], measured: dict[str, Any], prices: dict[str, Any]) -> str:
    model = measured["model"]
    rows = model["example_rows"]
    head = [
        f"# Kubernetes or Lambda for {model['name']} v{model['version']}",
        "",
        f"Inputs: {signature(model['inputs'])}. Outputs: {signature(model['outputs'])}.",
        "",
        f"Measured here with this model answering its own example ({rows} row{'s' if rows != 1 else ''}, "
        "from its metadata.json), every runtime's answer checked against TensorFlow's; "
        f"prices from `{prices.get('source', 'prices.yaml').strip()}` "
        f"(reviewed {prices['reviewed']}; {prices.get('caveat', 'check them first')}). "
        f"Deployables: {deployables(measured)}.",
        "",
        "Left out: data transfer (the same for both), the free tier (unless enabled in the prices file), "
        "Lambda compute tiers above 6 billion GB-seconds. Lambda duration is the warm handler time measured "
        f"here, slowed in proportion below {FULL_VCPU_MB} MB (Lambda's one-vCPU size).",
        "",
    ]
    return "\n".join(head + [line for env in envs for line in section(env, measured)])
