"""monitor_serving on the demo data's real rows replayed as served traffic.

Each year's rows become a served log in the contract's layout (the model's features as
logged, one request per row, the true ``employed`` label sent back as feedback); the
training statistics are 2015's rows, as the first continuous-training window trains on.
The offline continuous-training windows (README, benchmarks/RESULTS.md) flagged ANC only:
ANC 0.0317 from 2015 to 2016, about 0.043 from 2015 to 2018, every other feature below
0.012. The served windows must flag the same feature, and nothing else.

The predictions are a stand-in model fitted on 2015 (the employment rate of each education
level, SCHL): real scores of real rows, without TensorFlow in this environment.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from kfpkit import demo_data
from kfpkit.classification import binary_metrics
from kfpkit.components.monitor_serving.monitor import Settings, monitor
from kfpkit.serving.served_logs import read_served
from kfpkit.testing import served_logs as sl
from kfpkit.tfdv.in_process import statistics_of_table
from kfpkit.tfdv.validation import Thresholds

FEATURES = ["AGEP", *demo_data.CATEGORICALS]  # what the served model takes (not id, year)
LIMITS = Thresholds(0.03, 0.03)  # the continuous-training pipeline's thresholds
SETTINGS = Settings(drift=LIMITS, skew=LIMITS, max_decay=0.02)


@pytest.fixture(scope="module")
def demo() -> pa.Table:
    return pq.read_table(demo_data.demo_parquet())


def year(demo: pa.Table, y: int) -> pa.Table:
    return demo.filter(pc.equal(demo["year"], y))


def rate_by_education(train: pa.Table) -> dict[str, float]:
    rates = train.group_by("SCHL").aggregate([("employed", "mean")])
    return dict(zip(rates["SCHL"].to_pylist(), rates["employed_mean"].to_pylist(), strict=True))


def served_log(rows: pa.Table, folder: Path, day: datetime, model: dict[str, float]) -> Path:
    """The rows as one day of served requests (one row each) and their labels as feedback,
    in the log contract's layout, in four files of each kind."""
    times = sl.evenly(day, timedelta(days=1), rows.num_rows)
    ids = [f"{day:%Y%m%d}-{i}" for i in range(rows.num_rows)]
    prior = float(np.mean(list(model.values())))
    scores = [model.get(s, prior) for s in rows["SCHL"].to_pylist()]
    requests, feedback = sl.served_rows(rows, FEATURES, "employed", scores, times, ids,
                                        latency_ms=3.0, feedback_delay_s=3600)  # fmt: skip
    sl.write_experiment(folder, requests, feedback, files=4)
    return folder


def test_served_years_flag_the_feature_the_offline_windows_flagged(demo, tmp_path):
    train = year(demo, 2015)
    model = rate_by_education(train)
    training = statistics_of_table(train)  # every column, as the training split's statistics
    logs = tmp_path / "employment"
    days = {y: datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=i)
            for i, y in enumerate((2016, 2017, 2018))}  # fmt: skip
    for y, day in days.items():
        served_log(year(demo, y), logs, day, model)
    scores = np.array([model.get(s) for s in train["SCHL"].to_pylist()])
    reference = binary_metrics(train["employed"].to_numpy().astype(float), scores)

    results, previous = {}, None
    for y, day in days.items():
        window = read_served(str(logs), day, day + timedelta(days=1))
        assert window.num_rows == year(demo, y).num_rows
        results[y], previous = monitor(window, training, previous, SETTINGS, reference)

    skew = {y: {m["feature"]: m["value"] for m in r.skew} for y, r in results.items()}
    # the features the offline windows flagged: ANC, and only ANC
    assert results[2016].moved_features == ["ANC"]
    assert skew[2016]["ANC"] == pytest.approx(0.0317, abs=0.003)
    assert results[2018].moved_features == ["ANC"]
    assert skew[2018]["ANC"] == pytest.approx(0.043, abs=0.003)
    for y in days:
        others = {f: v for f, v in skew[y].items() if f != "ANC"}
        assert set(others) == set(FEATURES) - {"ANC"} and max(others.values()) < 0.015
    # year to year the served traffic barely moves (offline: largest drift 0.0154)
    assert results[2016].drift == []  # the first served window has no previous one
    for y in (2017, 2018):
        assert results[y].drift and max(m["value"] for m in results[y].drift) < 0.03
        assert results[y].prediction["drift"]["value"] < 0.03
    # the labels came back: performance is measured, and the stand-in model holds up
    for y, r in results.items():
        assert r.performance["labelled_rows"] == year(demo, y).num_rows
        assert abs(r.performance["decay"]) < 0.02 and not r.performance["over"]
        assert [x.split(":")[0] for x in r.reasons] == ["skew from the training data"]
