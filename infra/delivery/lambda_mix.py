"""A Lambda canary's prediction mix against the stable version's, from CloudWatch: the `Predictions`
metric the handler publishes as embedded metrics (serving/lambda_handler.py), by Function, Version and
Class (a column of the classifier's output), summed over the bake so far for each version. The same
arithmetic as a Kubernetes canary's (`analysis.mix_shift`): judged once each side answered
MIX_ROWS_PER_CLASS rows per class, above alarmPredictionMixPsi a breach.

CloudWatch extracts embedded metrics from the function's log a little after they are written, so the
window ends a minute ago at most; a version that published none (one deployed before the mix existed)
leaves the mix unjudged, never failed.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from delivery.analysis import MixShift, Window, mix_shift
from serving.emf import NAMESPACE
from serving.emf import PREDICTIONS as METRIC


def _classes(cloudwatch: Any, function: str, version: str) -> list[str]:
    """The classes a version published predictions for."""
    dimensions = [{"Name": "Function", "Value": function}, {"Name": "Version", "Value": version}]
    found = set()
    for page in cloudwatch.get_paginator("list_metrics").paginate(
        Namespace=NAMESPACE, MetricName=METRIC, Dimensions=dimensions
    ):
        for metric in page["Metrics"]:
            found |= {d["Value"] for d in metric["Dimensions"] if d["Name"] == "Class"}
    return sorted(found)


def _sums(cloudwatch: Any, function: str, version: str, since: datetime.datetime) -> dict[str, float]:
    """Rows each class topped on `version` since `since`, one query per class."""
    classes = _classes(cloudwatch, function, version)
    if not classes:
        return {}
    now = datetime.datetime.now(datetime.UTC)
    seconds = max(60, int((now - since).total_seconds()) // 60 * 60 + 60)
    queries = [
        {
            "Id": f"c{index}",
            "Label": column,
            "MetricStat": {
                "Metric": {
                    "Namespace": NAMESPACE,
                    "MetricName": METRIC,
                    "Dimensions": [
                        {"Name": "Function", "Value": function},
                        {"Name": "Version", "Value": version},
                        {"Name": "Class", "Value": column},
                    ],
                },
                "Period": seconds,
                "Stat": "Sum",
            },
        }
        for index, column in enumerate(classes)
    ]
    answer = cloudwatch.get_metric_data(
        MetricDataQueries=queries, StartTime=since, EndTime=now + datetime.timedelta(minutes=1)
    )
    return {result["Label"]: float(sum(result["Values"])) for result in answer["MetricDataResults"]}


def lambda_mix(
    cloudwatch: Any, function: str, stable_version: str, new_version: str, min_rows: int
) -> Callable[[], MixShift | None]:
    """Each look: the new version's mix against the stable version's since the bake began."""
    since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1)

    def look() -> MixShift | None:
        new = Window(0, 0, 0, None, mix=_sums(cloudwatch, function, new_version, since))
        stable = Window(0, 0, 0, None, mix=_sums(cloudwatch, function, stable_version, since))
        return mix_shift(new, stable, min_rows)

    return look
