"""Which differences between the demo's models are real: evaluate with bootstrap intervals.

Two sources of models:

- default: the online replay's models (``.cache/online_replay/models``, made by
  bench_online_replay.py): A trained on 2015 (the frozen model), B retrained on 2016, W
  trained on 2015 without its strongest feature; evaluated on every row of 2017 and 2018.
- ``--train DIR``: models trained here, by the train component's runtime, on one whole year
  each (90 % train, 10 % validation, seeded), 2015 (the frozen model), 2016 and 2017; each
  retrained model against the frozen one on every later year (2017: 2016 vs 2015; 2018: 2016
  vs 2015 and 2017 vs 2015). notebooks/evaluation.ipynb runs this (42 s on 2 idle cores).

Each pair is evaluated with ``kfpkit.components.evaluate.evaluator`` (the evaluate
component's runtime) with paired bootstrap intervals (1,000 resamples, seed 0), sliced by SEX,
RAC1P and age band, noninferiority at 95 % with a 0.001 margin, and the candidate's feature
attributions (mean |attribution| on 1,000 sampled test rows, overall and per slice). Prints a
Markdown summary and writes the results as JSON (default
``benchmarks/results_evaluate_intervals.json``) and each pair's evaluate report
(``--reports DIR``). Run in the train venv:
``.venvs/train/bin/python benchmarks/evaluate_intervals_demo.py`` (about 5 min on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kfpkit.components.evaluate import bands, evaluator, intervals
from kfpkit.components.evaluate import metrics as m

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / ".cache/online_replay/models"
DATA = ROOT / ".cache/demo/employment.parquet"
RESULTS_JSON = ROOT / "benchmarks/results_evaluate_intervals.json"
LABEL = "employed"
Pairs = dict[int, tuple[tuple[str, str], ...]]  # test year -> (candidate, baseline) pairs
PAIRS: Pairs = {2017: (("B", "A"), ("W", "A")), 2018: (("B", "A"), ("W", "A"))}
# --train: a model per year named by it; each retrained model against the frozen 2015 one
TRAIN_YEARS = (2015, 2016, 2017)
TRAIN_PAIRS: Pairs = {2017: (("2016", "2015"),), 2018: (("2016", "2015"), ("2017", "2015"))}
TRAIN_HYPERPARAMETERS = {"epochs": 4, "early_stopping_patience": 1, "seed": 42}
SLICE_COLUMNS = ("SEX", "RAC1P", "age_band")
AGE_EDGES = (25, 45, 65)  # bands <25, 25-45, 45-65, >=65 (evaluate's slice_bins)
NONINFERIORITY_MARGIN = 0.001
EXPLAIN_ROWS = 1000  # the candidate's feature attributions on this many sampled test rows


def _write(rows: pa.Table, folder: Path) -> Path:
    folder.mkdir(parents=True)
    pq.write_table(rows, folder / "data-000000000000.parquet")
    return folder


def _year(table: pa.Table, year: int, folder: Path, rows: int = 0) -> Path:
    """The year's rows (a seeded sample of ``rows`` when > 0) with an ``age_band`` column."""
    found = table.filter(pc.equal(table["year"], year))
    if 0 < rows < found.num_rows:
        pick = np.random.default_rng(year).choice(found.num_rows, rows, replace=False)
        found = found.take(np.sort(pick))
    band = bands.slice_labels(found["AGEP"].to_numpy(), AGE_EDGES)
    return _write(found.append_column("age_band", pa.array(band)), folder)


def train_models(table: pa.Table, work: Path) -> dict[str, dict[str, Any]]:
    """A model per year of TRAIN_YEARS on that year's rows (90 % train, 10 % validation);
    name -> {path, rows, seconds, validation metrics}."""
    from kfpkit.hyperparameters import parse_hyperparameters
    from kfpkit.training import trainer

    models = {}
    for year in TRAIN_YEARS:
        rows = table.filter(pc.equal(table["year"], year))
        order = np.random.default_rng(year).permutation(rows.num_rows)
        cut = int(0.9 * rows.num_rows)
        train = _write(rows.take(np.sort(order[:cut])), work / f"train_{year}")
        validation = _write(rows.take(np.sort(order[cut:])), work / f"validation_{year}")
        started = time.perf_counter()
        result = trainer.train(
            trainer.TrainRequest(
                train_path=str(train),
                validation_path=str(validation),
                model_dir=str(work / "models" / str(year)),
                label_column=LABEL,
                hyperparameters=parse_hyperparameters(TRAIN_HYPERPARAMETERS),
                exclude_columns=("id", "year"),
            )
        )
        models[str(year)] = {
            "path": str(work / "models" / str(year)),
            "train_rows": cut,
            "seconds": round(time.perf_counter() - started, 1),
            "validation": {
                k: round(float(v), 4)
                for k, v in result.metrics.items()
                if k in ("accuracy", "auc") and isinstance(v, int | float)
            },
        }
        print(f"trained {year} on {cut:,} rows in {models[str(year)]['seconds']} s", flush=True)
    return models


def evaluate_pair(
    test: Path, candidate: str, baseline: str, settings: intervals.BootstrapSettings
) -> tuple[dict[str, Any], str]:
    """One candidate against its baseline on one test split: the JSON row and the report."""
    start = time.perf_counter()
    got = evaluator.evaluate(
        evaluator.EvaluateRequest(
            model_path=candidate,
            test_path=str(test),
            baseline_path=baseline,
            label_column=LABEL,
            slice_columns=SLICE_COLUMNS,
            rule=m.BlessingRule(
                require_noninferiority=True, noninferiority_margin=NONINFERIORITY_MARGIN
            ),
            bootstrap=settings,
            explain_rows=EXPLAIN_ROWS,
        )
    )
    ci = got.intervals
    assert ci is not None and got.baseline is not None and got.slice_intervals is not None
    row: dict[str, Any] = {
        "rows": got.candidate["count"],
        "seconds": round(time.perf_counter() - start, 1),
        "blessed_noninferior": got.decision.blessed,
        "metrics": {},
        "fairness": {
            c: {k: v for k, v in g.items() if k not in ("rates", "excluded")}
            | {"excluded": g.get("excluded", [])}
            for c, g in (got.fairness or {}).items()
        },
        "ece": (got.calibration or {}).get("expected_calibration_error"),
        # mean |attribution| per feature of the candidate, overall and per slice value
        "attributions": {
            k: (got.explanation or {}).get(k)
            for k in ("method", "rows", "importance", "slices", "max_completeness_gap")
        },
        "slice_auc": {
            c: {
                v: [
                    got.slices[c][v]["count"],
                    got.slices[c][v]["auc"],
                    intervals.as_json(f.models.get("model", {}).get("auc")),
                    f.reason,
                ]
                for v, f in vals.items()
            }
            for c, vals in got.slice_intervals.items()
        },
        # per slice value the paired interval of (candidate - baseline) AUC, None when the
        # slice is too small for one
        "slice_auc_difference_ci": {
            c: {v: intervals.as_json(f.difference.get("auc")) for v, f in vals.items()}
            for c, vals in got.slice_intervals.items()
        },
    }
    for name in ("auc", "accuracy", "log_loss"):
        point = got.candidate[name] - got.baseline[name]
        row["metrics"][name] = {
            "candidate": got.candidate[name],
            "baseline": got.baseline[name],
            "candidate_ci": intervals.as_json(ci.models["model"][name]),
            "baseline_ci": intervals.as_json(ci.models["baseline"][name]),
            "difference": point,
            "difference_ci": intervals.as_json(ci.difference[name]),
            "real": intervals.distinguishable(ci.difference[name]),
            "statement": intervals.describe_difference(
                name, point, ci.difference[name], settings.confidence
            ),
        }
    return row, got.report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=Path, help="train the models here (see the docstring)")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--test-rows", type=int, default=0, help="per test year; 0: all")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=RESULTS_JSON)
    parser.add_argument("--reports", type=Path, help="write each pair's evaluate report here")
    args = parser.parse_args()
    settings = intervals.BootstrapSettings(resamples=args.resamples, seed=0)
    table = pq.read_table(args.data)
    results: dict[str, Any] = {"resamples": args.resamples, "seed": 0, "pairs": []}
    with tempfile.TemporaryDirectory() as tmp:
        if args.train:
            models = train_models(table, args.train)
            results["models"] = models
            paths, pairs = {k: v["path"] for k, v in models.items()}, TRAIN_PAIRS
        else:
            paths, pairs = {k: str(MODELS / k) for k in ("A", "B", "W")}, PAIRS
        for year, year_pairs in pairs.items():
            test = _year(table, year, Path(tmp) / str(year), args.test_rows)
            for candidate, baseline in year_pairs:
                row, report = evaluate_pair(test, paths[candidate], paths[baseline], settings)
                row = {"year": year, "candidate": candidate, "baseline": baseline, **row}
                results["pairs"].append(row)
                if args.reports:
                    args.reports.mkdir(parents=True, exist_ok=True)
                    (args.reports / f"{year}-{candidate}-vs-{baseline}.md").write_text(report)
                print(
                    f"## {year}: {candidate} vs {baseline} "
                    f"({row['rows']:,} rows, {row['seconds']:.0f} s)"
                )
                for found in row["metrics"].values():
                    print(f"- {found['statement']}")
                print(f"- ECE {row['ece']:.4f}; fairness {row['fairness']}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
