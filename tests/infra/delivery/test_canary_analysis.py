"""The canary's arithmetic against Prometheus' own rules: histogram_quantile, counter resets, and
the decision on a scripted series of scrapes."""

from __future__ import annotations

import pytest
from delivery.analysis import Snapshot, Thresholds, Window, judge, mix_shift, parse, quantile, window
from delivery.canary import INCONCLUSIVE, PROMOTE, ROLL_BACK, analyse
from drift.report import psi
from program.settings import Slo

DEFAULT = Thresholds(Slo(), min_requests=50)

INF = float("inf")


@pytest.mark.parametrize(
    ("q", "buckets", "expected"),
    [
        (0.99, {0.1: 50, 0.5: 90, 1.0: 100, INF: 100}, 0.95),  # linear inside (0.5, 1]
        (0.5, {0.1: 50, 0.5: 90, 1.0: 100, INF: 100}, 0.1),
        (0.99, {0.1: 50, INF: 100}, 0.1),  # in +Inf: the highest finite bound
        (0.99, {0.1: 0, INF: 0}, None),  # nothing observed
    ],
)
def test_quantile_as_histogram_quantile_computes_it(q: float, buckets: dict, expected: float | None) -> None:
    assert quantile(q, buckets) == (pytest.approx(expected) if expected is not None else None)


EXPOSITION = """\
# TYPE rest_server_requests_total counter
rest_server_requests_total{model="m",route="v2_infer",status_code="200"} 90.0
rest_server_requests_total{model="m",route="tf_predict",status_code="500"} 6.0
rest_server_requests_total{model="m",route="v2_infer",status_code="429"} 4.0
rest_server_requests_total{model="m",route="ready",status_code="200"} 1000.0
rest_server_requests_total{model="other",route="v2_infer",status_code="500"} 50.0
# TYPE rest_server_request_duration_seconds histogram
rest_server_request_duration_seconds_bucket{le="0.01",model="m",route="v2_infer",status_code="200"} 80.0
rest_server_request_duration_seconds_bucket{le="0.1",model="m",route="v2_infer",status_code="200"} 90.0
rest_server_request_duration_seconds_bucket{le="+Inf",model="m",route="v2_infer",status_code="200"} 90.0
rest_server_request_duration_seconds_bucket{le="0.01",model="m",route="tf_predict",status_code="500"} 0.0
rest_server_request_duration_seconds_bucket{le="0.1",model="m",route="tf_predict",status_code="500"} 6.0
rest_server_request_duration_seconds_bucket{le="+Inf",model="m",route="tf_predict",status_code="500"} 6.0
"""


def test_only_the_models_inference_routes_count() -> None:
    snapshot = parse(EXPOSITION, "m")
    assert snapshot.statuses == {"200": 90.0, "500": 6.0, "429": 4.0}
    assert snapshot.buckets == {0.01: 80.0, 0.1: 96.0, INF: 96.0}
    seen = window(Snapshot(), snapshot)
    assert (seen.requests, seen.errors, seen.throttled) == (100, 6, 4)
    assert seen.error_ratio == pytest.approx(0.06)


def test_a_counter_that_went_down_restarted() -> None:
    seen = window(Snapshot({"200": 100.0}), Snapshot({"200": 30.0, "500": 3.0}))
    assert (seen.requests, seen.errors) == (33, 3)


def scripted(*snapshots: Snapshot) -> tuple:
    series, now = iter(snapshots), [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    return (lambda: next(series)), (lambda: now[0]), sleep


def test_the_first_breach_rolls_back_and_the_timeline_shows_each_step() -> None:
    scrape, clock, sleep = scripted(
        Snapshot({"200": 0}),
        Snapshot({"200": 20, "500": 5}),  # 25 requests: too few to judge
        Snapshot({"200": 95, "500": 5}),  # 5 % errors over 100 requests
        Snapshot({"200": 500, "500": 5}),
    )
    analysis = analyse(
        scrape,
        Thresholds(Slo(), min_requests=50),
        bake_seconds=60,
        interval=10,
        clock=clock,
        sleep=sleep,
    )
    assert analysis.verdict == ROLL_BACK
    assert analysis.reason == "error ratio 0.0500 > 0.0100"
    assert [(s.seconds, s.kubernetes.requests, bool(s.breaches)) for s in analysis.steps] == [
        (10, 25, False),
        (20, 100, True),
    ]


def test_a_clean_bake_promotes_and_a_quiet_one_is_inconclusive() -> None:
    clean = scripted(Snapshot({"200": 0}), Snapshot({"200": 60}), Snapshot({"200": 120}))
    assert analyse(clean[0], DEFAULT, 20, 10, clean[1], clean[2]).verdict == PROMOTE
    quiet = scripted(Snapshot({"200": 0}), Snapshot({"200": 10}), Snapshot({"200": 20}))
    analysis = analyse(quiet[0], DEFAULT, 20, 10, quiet[1], quiet[2])
    assert analysis.verdict == INCONCLUSIVE
    assert analysis.reason == "20 requests in 20 s, fewer than the 50 a verdict needs"


MIX = """\
# TYPE model_predictions_total counter
model_predictions_total{class="0",label="setosa",model="m",output="p"} 30.0
model_predictions_total{class="1",label="versicolor",model="m",output="p"} 50.0
model_predictions_total{class="1",label="versicolor",model="other",output="p"} 7.0
"""


def test_the_prediction_mix_is_read_by_column_with_its_names() -> None:
    snapshot = parse(MIX, "m")
    assert snapshot.predictions == {"0": 30.0, "1": 50.0}
    assert snapshot.labels == {"0": "setosa", "1": "versicolor"}


def mixes(new: dict[str, float], stable: dict[str, float]) -> tuple[Window, Window]:
    return (
        window(Snapshot(), Snapshot({"200": sum(new.values())}, predictions=new)),
        window(Snapshot(), Snapshot({"200": sum(stable.values())}, predictions=stable, labels={"0": "a"})),
    )


def test_a_mix_moved_past_the_threshold_breaches_naming_the_classes_that_moved() -> None:
    new, stable = mixes({"0": 300}, {"0": 100, "1": 100, "2": 100})
    shift = mix_shift(new, stable, 50)
    assert shift is not None
    assert shift.psi == pytest.approx(psi([1 / 3] * 3, [1, 0, 0]))
    assert shift.moved(2) == "a 33% → 100%, 1 33% → 0%"
    assert [b.signal for b in judge(new, DEFAULT, stable)] == ["prediction mix PSI"]
    assert judge(new, DEFAULT) == []  # no stable side, no mix judged


def test_a_mix_that_moved_a_little_or_has_too_few_rows_is_not_a_breach() -> None:
    new, stable = mixes({"0": 95, "1": 105, "2": 100}, {"0": 100, "1": 100, "2": 100})
    shift = mix_shift(new, stable, 50)
    assert shift is not None
    assert shift.psi is not None
    assert shift.psi < 0.01
    assert judge(new, DEFAULT, stable) == []
    few_new, few_stable = mixes({"0": 59}, {"0": 20, "1": 20, "2": 19})  # 20 rows per class needed: 60
    few = mix_shift(few_new, few_stable, 50)
    assert few is not None
    assert few.psi is None
    assert few.rows_needed == 60
    assert mix_shift(*mixes({}, {}), 50) is None  # a model with no classifier output has no mix


def test_the_shadow_s_disagreement_is_judged_from_the_stable_side_once_enough_rows_were_compared() -> None:
    new = window(Snapshot(), Snapshot({"200": 100}))
    disagreeing = window(Snapshot(), Snapshot(shadow_rows={"agreed": 90, "disagreed": 10}))
    assert disagreeing.disagreement == 0.1
    assert [str(b) for b in judge(new, DEFAULT, disagreeing)] == ["shadow disagreement 0.1000 > 0.05"]
    few = window(Snapshot(), Snapshot(shadow_rows={"agreed": 50, "disagreed": 49}))  # 99 < MIN_SHADOW_ROWS
    assert judge(new, DEFAULT, few) == []
    agreeing = window(Snapshot(), Snapshot(shadow_rows={"agreed": 990, "disagreed": 10}))
    assert judge(new, DEFAULT, agreeing) == []
