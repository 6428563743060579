"""CloudWatch's embedded metric format: a JSON log line from which CloudWatch extracts metrics, the way a
Lambda function publishes its own without an API call (serving/lambda_shadow.py's shadow verdicts,
serving/lambda_handler.py's prediction mix)."""

from __future__ import annotations

import json
import time

NAMESPACE = "twinserve"
# The metrics the Lambda handler writes and the program's alarms and the rollout read.
PREDICTIONS = "Predictions"  # rows an answer's class topped, by Function, Version and Class
SHADOW_ROWS_AGREED = "ShadowRowsAgreed"  # a shadow's verdicts, by Function and Version
SHADOW_ROWS_DISAGREED = "ShadowRowsDisagreed"


def emf_line(dimensions: dict[str, str], counts: dict[str, float], unit: str = "Count") -> str:
    """One record: `counts` as metrics under one set of `dimensions`, in NAMESPACE."""
    return json.dumps(
        {
            "_aws": {
                "Timestamp": int(time.time() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": NAMESPACE,
                        "Dimensions": [list(dimensions)],
                        "Metrics": [{"Name": name, "Unit": unit} for name in counts],
                    }
                ],
            },
            **dimensions,
            **counts,
        },
        separators=(",", ":"),
    )
