"""Which differences between the demo's models are real: evaluate with bootstrap intervals.

The online replay's models (``.cache/online_replay/models``, made by bench_online_replay.py):
A trained on 2015 (the frozen model), B retrained on 2016, W trained on 2015 without its
strongest feature. Each pair is evaluated with ``kfpkit.components.evaluate.evaluator`` on
every row of 2017 and of 2018 (no model saw them), 1,000 paired bootstrap resamples, seed 0,
sliced by SEX, RAC1P and age band. Prints a Markdown summary and writes
``benchmarks/results_evaluate_intervals.json``. Run in the train venv:
``.venvs/train/bin/python benchmarks/evaluate_intervals_demo.py`` (about 5 min on 2 cores).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kfpkit.components.evaluate import evaluator, intervals
from kfpkit.components.evaluate import metrics as m

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / ".cache/online_replay/models"
DATA = ROOT / ".cache/demo/employment.parquet"
RESULTS_JSON = ROOT / "benchmarks/results_evaluate_intervals.json"
PAIRS = (("B", "A"), ("W", "A"))  # (candidate, baseline)
AGE_BANDS = (0, 25, 45, 65, 200)


def _year(table: pa.Table, year: int, folder: Path) -> Path:
    rows = table.filter(pc.equal(table["year"], year))
    age = rows["AGEP"].to_numpy()
    band = np.digitize(age, AGE_BANDS[1:-1])
    names = np.array(
        [f"{lo}-{hi - 1}" for lo, hi in zip(AGE_BANDS[:-1], AGE_BANDS[1:], strict=True)]
    )
    rows = rows.append_column("age_band", pa.array(names[band]))
    folder.mkdir(parents=True)
    pq.write_table(rows, folder / "data-000000000000.parquet")
    return folder


def main() -> None:
    table = pq.read_table(DATA)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for year in (2017, 2018):
            test = _year(table, year, Path(tmp) / str(year))
            for candidate, baseline in PAIRS:
                start = time.perf_counter()
                got = evaluator.evaluate(
                    evaluator.EvaluateRequest(
                        model_path=str(MODELS / candidate),
                        test_path=str(test),
                        baseline_path=str(MODELS / baseline),
                        label_column="employed",
                        slice_columns=("SEX", "RAC1P", "age_band"),
                        rule=m.BlessingRule(require_noninferiority=True),
                        bootstrap=intervals.BootstrapSettings(resamples=1000, seed=0),
                    )
                )
                seconds = time.perf_counter() - start
                ci = got.intervals
                row = {
                    "year": year,
                    "candidate": candidate,
                    "baseline": baseline,
                    "rows": got.candidate["count"],
                    "seconds": round(seconds, 1),
                    "blessed_noninferior": got.decision.blessed,
                    "metrics": {},
                    "fairness": {
                        c: {k: v for k, v in g.items() if k not in ("rates", "excluded")}
                        for c, g in got.fairness.items()
                    },
                    "ece": got.calibration["expected_calibration_error"],
                    "slice_auc": {
                        c: {
                            v: [
                                got.slices[c][v]["auc"],
                                intervals.as_json(f.models.get("model", {}).get("auc")),
                                f.reason,
                            ]
                            for v, f in vals.items()
                        }
                        for c, vals in got.slice_intervals.items()
                    },
                }
                for name in ("auc", "accuracy", "log_loss"):
                    point = got.candidate[name] - got.baseline[name]
                    row["metrics"][name] = {
                        "candidate": got.candidate[name],
                        "baseline": got.baseline[name],
                        "difference": point,
                        "difference_ci": intervals.as_json(ci.difference[name]),
                        "statement": intervals.describe_difference(
                            name, point, ci.difference[name], 0.95
                        ),
                    }
                results.append(row)
                print(
                    f"## {year}: {candidate} vs {baseline} ({row['rows']:,} rows, {seconds:.0f} s)"
                )
                for found in row["metrics"].values():
                    print(f"- {found['statement']}")
                print(f"- ECE {row['ece']:.4f}; fairness {row['fairness']}", flush=True)
    RESULTS_JSON.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {RESULTS_JSON}")


if __name__ == "__main__":
    main()
