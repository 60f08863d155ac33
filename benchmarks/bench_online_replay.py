"""The online experiments and the monitoring on the demo data's real years, replayed as traffic.

Issue 17's proof: real 2016-2018 rows go, in year order, one row a request, through the HTTP
API of a real ``kfpkit serve`` process (``--runner python``, the train family's interpreter)
serving two variants, and each row's true label goes back to the feedback endpoint. Then
``online_experiment``'s runtime decides over the written log folder at checkpoints, its
launcher runs once on the whole folder, and ``monitor_serving``'s runtime looks at each
year's served traffic. Three interpreters, one file: each stage runs where its stack is.

- ``train`` (``.venvs/train/bin/python``): splits the demo data (seeded, per year), trains
  A (2015), B (2016's train split: a retrained model, as continuous training's second
  serving version) and W (2015 without the feature whose permutation costs A the most
  validation AUC), scores every replayed row with all three (the counterfactual the regret
  needs) and A and B on every held-out 2016-2018 row (the offline difference).
- ``monitor`` (``.venvs/tfdv/bin/python``): TFDV statistics of A's 2015 training rows, then
  ``monitor_serving``'s ``monitor`` on each year's window of one experiment's log, against
  them (skew) and the previous year's served window (drift; 2016: the 2015 statistics).
- the driver (``.venv/bin/python benchmarks/bench_online_replay.py``): runs both stages,
  serves each experiment (a: A vs B ``--routing ab --unit-field id``; b: A vs W the same;
  c: A vs W ``--routing bandit``, Thompson), analyses, then has A alone serve larger
  windows (``--monitor-rows`` a year) for the monitor stage, and writes
  ``benchmarks/results_online_replay.json``. About 22 minutes on 2 busy cores.

Work files live under ``.cache/online_replay/`` (models and splits are reused when present).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

WORK = ROOT / ".cache" / "online_replay"
RESULTS = ROOT / "benchmarks" / "results_online_replay.json"
TRAIN_PYTHON = ROOT / ".venvs" / "train" / "bin" / "python"
TFDV_PYTHON = ROOT / ".venvs" / "tfdv" / "bin" / "python"
LABEL = "employed"
YEARS = (2016, 2017, 2018)
SEED = 17
# the training run: the trainer's defaults but fewer epochs (2 shared cores), seeded
HYPERPARAMETERS = {"epochs": 6, "early_stopping_patience": 2, "seed": 42}
# drift and skew thresholds of the continuous-training pipeline (categorical L-infinity,
# numeric Jensen-Shannon)
THRESHOLD = 0.03
FEEDBACK_BATCH = 20  # labels come back in small batches, a little after their requests
EXPERIMENTS = {
    "a_ab_A_vs_B": {"treatment": "B", "routing": ["--routing", "ab", "--unit-field", "id"]},
    "b_ab_A_vs_W": {"treatment": "W", "routing": ["--routing", "ab", "--unit-field", "id"]},
    "c_bandit_A_vs_W": {"treatment": "W", "routing": ["--routing", "bandit",
                                                       "--bandit", "thompson"]},
}  # fmt: skip


def _features() -> list[str]:
    from kfpkit import demo_data

    return ["AGEP", *demo_data.CATEGORICALS]


# --- stage train (train family) -------------------------------------------------------------


def split_years(work: Path, per_year: int) -> dict[str, Any]:
    """Seeded splits: 2015 80/10/10 (A, W), 2016 70/10 for B and the other 20 % as its
    traffic pool; 2017 and 2018 wholly traffic. ``per_year`` rows of each pool are replayed."""
    from kfpkit import demo_data

    table = pq.read_table(demo_data.demo_parquet())
    rng = np.random.default_rng(SEED)
    out: dict[str, Any] = {"rows": {}}
    replay, held_out = [], []
    for year in (2015, *YEARS):
        rows = table.filter(pc.equal(table["year"], year))
        order = rng.permutation(rows.num_rows)
        n = rows.num_rows
        if year == 2015:
            parts = {"train_2015": order[: int(0.8 * n)],
                     "validation_2015": order[int(0.8 * n): int(0.9 * n)],
                     "test_2015": order[int(0.9 * n):]}  # fmt: skip
            pool = None
        elif year == 2016:
            parts = {"train_2016": order[: int(0.7 * n)],
                     "validation_2016": order[int(0.7 * n): int(0.8 * n)]}  # fmt: skip
            pool = order[int(0.8 * n) :]
        else:
            parts, pool = {}, order
        for name, index in parts.items():
            (work / name).mkdir(parents=True, exist_ok=True)
            pq.write_table(rows.take(np.sort(index)), work / name / "data.parquet")
            out["rows"][name] = len(index)
        if pool is not None:
            held_out.append(rows.take(np.sort(pool)))
            # the replay's order within a year is the pool's random order (no finer time)
            replay.append(rows.take(pool[:per_year]))
            out["rows"][f"pool_{year}"] = len(pool)
    pq.write_table(pa.concat_tables(replay), work / "replay.parquet")
    pq.write_table(pa.concat_tables(held_out), work / "held_out.parquet")
    out["rows"]["replay"] = sum(t.num_rows for t in replay)
    return out


def _train(work: Path, name: str, train: str, validation: str, features: list[str]) -> dict:
    from kfpkit.hyperparameters import parse_hyperparameters
    from kfpkit.training import trainer

    started = time.perf_counter()
    result = trainer.train(trainer.TrainRequest(
        train_path=str(work / train), validation_path=str(work / validation),
        model_dir=str(work / "models" / name), label_column=LABEL,
        hyperparameters=parse_hyperparameters(HYPERPARAMETERS), feature_columns=tuple(features),
    ))  # fmt: skip
    metrics = {k: round(float(v), 4) for k, v in result.metrics.items()
               if isinstance(v, int | float)}  # fmt: skip
    return {"trained_on": train, "features": features, "seconds": round(
        time.perf_counter() - started, 1), "metrics": metrics}  # fmt: skip


def permutation_importance(model: Any, table: pa.Table, features: list[str]) -> dict[str, float]:
    """Validation AUC lost when one feature's values are shuffled (seeded), per feature."""
    from kfpkit.classification import binary_metrics

    labels = table[LABEL].to_numpy()
    base = binary_metrics(labels, model.predict_table(table))["auc"]
    rng = np.random.default_rng(SEED)
    lost = {}
    for name in features:
        shuffled = table.set_column(table.schema.get_field_index(name), name,
                                    table[name].take(rng.permutation(table.num_rows)))  # fmt: skip
        lost[name] = round(base - binary_metrics(labels, model.predict_table(shuffled))["auc"], 4)
    return dict(sorted(lost.items(), key=lambda kv: -kv[1]))


def stage_train(work: Path, per_year: int) -> None:
    from kfpkit import tabular
    from kfpkit.classification import binary_metrics

    work.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = split_years(work, per_year)
    features = _features()
    models: dict[str, Any] = {}
    doc["models"] = {}
    doc["models"]["A"] = _train(work, "A", "train_2015", "validation_2015", features)
    models["A"] = tabular.ServingModel(str(work / "models" / "A"), "A")
    validation = pq.read_table(work / "validation_2015")
    doc["permutation_auc_loss"] = permutation_importance(models["A"], validation, features)
    strongest = next(iter(doc["permutation_auc_loss"]))
    doc["strongest_feature"] = strongest
    doc["models"]["B"] = _train(work, "B", "train_2016", "validation_2016", features)
    doc["models"]["W"] = _train(work, "W", "train_2015", "validation_2015",
                                [f for f in features if f != strongest])  # fmt: skip
    for name in ("B", "W"):
        models[name] = tabular.ServingModel(str(work / "models" / name), name)
    test = pq.read_table(work / "test_2015")
    doc["test_2015"] = {n: _rounded(binary_metrics(test[LABEL].to_numpy(), m.predict_table(test)))
                        for n, m in models.items()}  # fmt: skip
    # the counterfactual of every replayed row: what each variant would have answered
    replay = pq.read_table(work / "replay.parquet")
    scored = {"id": replay["id"], "year": replay["year"], LABEL: replay[LABEL]}
    for name, model in models.items():
        scored[f"p_{name}"] = pa.array(model.predict_table(replay))
    pq.write_table(pa.table(scored), work / "replay_scored.parquet")
    # A against B offline, on every held-out row of 2016-2018 (paired: the same rows)
    held = pq.read_table(work / "held_out.parquet")
    labels = held[LABEL].to_numpy()
    offline: dict[str, Any] = {}
    correct = {}
    for name in ("A", "B", "W"):
        p = models[name].predict_table(held)
        offline[name] = _rounded(binary_metrics(labels, p))
        correct[name] = ((p >= 0.5) == (labels == 1)).astype(float)
    for other in ("B", "W"):
        diff = correct[other] - correct["A"]
        offline[f"{other}_minus_A_accuracy"] = round(float(diff.mean()), 5)
        se = diff.std(ddof=1) / np.sqrt(len(diff))
        offline[f"{other}_minus_A_paired_se"] = round(float(se), 5)
        # what an unpaired A/B split of these rows could see: two independent halves
        sd = np.sqrt(correct["A"].var(ddof=1) / (len(diff) / 2) + correct[other].var(ddof=1)
                     / (len(diff) / 2))  # fmt: skip
        offline[f"{other}_minus_A_split_se"] = round(float(sd), 5)
    offline["rows"] = held.num_rows
    doc["offline_held_out"] = offline
    (work / "train.json").write_text(json.dumps(doc, indent=2) + "\n")


def _rounded(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: round(float(v), 4) if isinstance(v, float) else v for k, v in metrics.items()}


# --- stage monitor (tfdv family) ------------------------------------------------------------


def stage_monitor(work: Path, log: str, windows_json: str, output: str) -> None:
    from kfpkit.components.monitor_serving import monitor
    from kfpkit.serving.served_logs import read_served
    from kfpkit.tfdv.in_process import statistics_of_table
    from kfpkit.tfdv.validation import Thresholds

    features = _features()
    train = pq.read_table(work / "train_2015", columns=features)
    training = statistics_of_table(train)
    reference = json.loads((work / "train.json").read_text())["test_2015"]["A"]
    thresholds = Thresholds(categorical=THRESHOLD, numeric=THRESHOLD)
    settings = monitor.Settings(drift=thresholds, skew=thresholds, metric="auc", max_decay=0.02)
    windows = json.loads(windows_json)
    out, previous = {}, training
    for year, (start, end) in windows.items():
        started = time.perf_counter()
        table = read_served(log, start, end)
        result, stats = monitor.monitor(table, training, previous, settings, reference)
        doc = result.to_dict()
        out[year] = {
            "rows": doc["rows"], "alert": doc["alert"], "reasons": doc["reasons"],
            "moved_features": doc["moved_features"],
            "skew": _top(doc["skew"]), "drift": _top(doc["drift"]),
            "prediction": {k: doc["prediction"].get(k) for k in ("mean", "std_dev")},
            "prediction_drift": (doc["prediction"].get("drift") or {}).get("value"),
            "performance": {k: v for k, v in doc["performance"].items()
                            if isinstance(v, int | float | str | bool)},
            "drift_baseline": "2015 training statistics" if previous is training
            else "previous year's served window",
            "seconds": round(time.perf_counter() - started, 2),
        }  # fmt: skip
        previous = stats
    # the noise floor of these window sizes: two disjoint samples of 2015's training rows of
    # the same size, compared as a window with its previous one
    n = max(v["rows"] for v in out.values())
    rng = np.random.default_rng(SEED)
    order = rng.permutation(train.num_rows)
    first = statistics_of_table(train.take(order[:n]))
    second = train.take(order[n : 2 * n])
    second = second.append_column("prediction", pa.array(np.full(n, 0.5)))
    second = second.append_column("status", pa.array(np.full(n, 200, dtype=np.int32)))
    second = second.append_column("out_of_domain", pa.array([""] * n))
    floor, _ = monitor.monitor(second, None, first, settings)
    out["noise_floor_2015_vs_2015"] = {"rows": n, "drift": _top(floor.to_dict()["drift"]),
                                       "moved_features": floor.moved_features}  # fmt: skip
    (work / output).write_text(json.dumps(out, indent=2) + "\n")


def _top(measured: list[dict[str, Any]], k: int = 4) -> list[dict[str, Any]]:
    ranked = sorted(measured, key=lambda m: -m["value"])[:k]
    return [{"feature": m["feature"], "value": round(m["value"], 4), "measure": m["measure"]}
            for m in ranked]  # fmt: skip


# --- driver (SDK venv) ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(port: int, process: subprocess.Popen, timeout: float = 600) -> float:
    from kfpkit.serving.client import Client

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"kfpkit serve exited {process.returncode}")
        try:
            status, _ = Client("127.0.0.1", port, timeout=2).request("GET", "/kfpkit/v1/status")
            if status == 200:
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(1)
    raise RuntimeError("kfpkit serve did not become ready")


def serve_experiment(work: Path, name: str, spec: dict, rows: list[dict], years: list[int],
                     ) -> dict[str, Any]:  # fmt: skip
    """Starts ``kfpkit serve`` with A and the treatment, sends every row as one request
    (in order) and its label as feedback, stops the server (SIGINT: the log is flushed)."""
    import shutil

    from kfpkit.serving.client import Client

    logs = work / "logs" / name
    shutil.rmtree(logs, ignore_errors=True)
    port = free_port()
    model = "employment"
    served_variants = ["A", *([spec["treatment"]] if "treatment" in spec else [])]
    cmd = [str(ROOT / ".venv" / "bin" / "kfpkit"), "serve", "--name", model,
           *[a for v in served_variants for a in ("--variant", f"{v}={work / 'models' / v}")],
           *spec["routing"], "--log-dir", str(logs), "--port", str(port),
           "--runner", "python", "--python", str(TRAIN_PYTHON)]  # fmt: skip
    with open(work / f"serve_{name}.log", "w") as server_log:
        process = subprocess.Popen(cmd, stdout=server_log, stderr=subprocess.STDOUT)
    try:
        ready = _wait_ready(port, process)
        client = Client("127.0.0.1", port, timeout=60)
        served: list[dict] = []
        pending: list[dict] = []
        checkpoints: list[dict] = []  # wall time after each year and each 500 labels
        year_windows: dict[str, list[str]] = {}
        started = time.perf_counter()
        latencies = []
        labelled = 0
        for i, (row, year) in enumerate(zip(rows, years, strict=True)):
            if i == 0 or years[i - 1] != year:
                year_windows[str(year)] = [_now()]
            label = row.pop(LABEL)
            sent = time.perf_counter()
            status, answer = client.post(f"/v1/models/{model}:predict", {"instances": [row]})
            latencies.append((time.perf_counter() - sent) * 1000)
            if status != 200:
                raise RuntimeError(f"predict {status}: {answer}")
            served.append({"row": i, "variant": answer["variant"],
                           "request_id": answer["request_id"],
                           "prediction": answer["predictions"][0], "label": label})  # fmt: skip
            pending.append({"request_id": answer["request_id"], "row": 0, "label": label})
            last_of_year = i + 1 == len(rows) or years[i + 1] != year
            if len(pending) >= FEEDBACK_BATCH or last_of_year:
                status, answer = client.post(f"/v1/models/{model}/feedback",
                                             {"feedback": pending})  # fmt: skip
                if status != 200:
                    raise RuntimeError(f"feedback {status}: {answer}")
                labelled += len(pending)
                pending = []
                if labelled % 500 == 0 or last_of_year:
                    checkpoints.append({"labelled": labelled, "at": _now()})
            if last_of_year:
                time.sleep(0.01)  # the year's window ends strictly before the next begins
                year_windows[str(year)].append(_now())
        seconds = time.perf_counter() - started
        _, status_doc = client.request("GET", "/kfpkit/v1/status")
        client.close()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    policy = json.loads((logs / model / "policy.json").read_text())
    return {
        "command": " ".join(cmd[1:]).replace(str(ROOT) + "/", ""),
        "ready_s": round(ready, 1), "seconds": round(seconds, 1), "requests": len(rows),
        "requests_per_s": round(len(rows) / seconds, 1),
        "latency_ms_p50": round(float(np.percentile(latencies, 50)), 2),
        "latency_ms_p99": round(float(np.percentile(latencies, 99)), 2),
        "served": served, "checkpoints": checkpoints, "years": year_windows,
        "policy": policy, "status": server_counts(status_doc), "log": str(logs / model),
    }  # fmt: skip


def server_counts(status: dict[str, Any]) -> dict[str, Any]:
    """What the server's status counted (model calls, log and feedback rows), no paths."""
    log = {k: v for k, v in (status.get("request_log") or {}).items() if k != "directory"}
    return {"model_calls": status.get("model_calls"), "request_log": log,
            "feedback": status.get("feedback")}  # fmt: skip


def _now() -> str:
    return datetime.now(UTC).isoformat()


def as_seen_at(table: pa.Table, at: str) -> pa.Table:
    """The log as someone reading it at ``at`` saw it: requests before, labels before."""
    cut = pa.scalar(datetime.fromisoformat(at), pa.timestamp("us", tz="UTC"))
    rows = table.filter(pc.less(table["timestamp"], cut))
    late = pc.fill_null(pc.greater_equal(rows["feedback_timestamp"], cut), True)
    for column in ("label", "reward"):
        index = rows.schema.get_field_index(column)
        rows = rows.set_column(index, column, pc.if_else(late, pa.scalar(None, rows[column].type),
                                                         rows[column]))  # fmt: skip
    return rows


def analyse_experiment(run: dict, treatment: str) -> dict[str, Any]:
    """online_experiment's runtime at every checkpoint, then its launcher on the folder."""
    from kfpkit.components.online_experiment import analysis
    from kfpkit.serving.served_logs import read_served

    table = read_served(run["log"])
    settings = analysis.Settings(control="A", treatments=(treatment,))
    path = []
    for point in run["checkpoints"]:
        result = analysis.analyse(as_seen_at(table, point["at"]), settings)
        test = result.comparisons[0].test if result.comparisons else None
        cur = test.current if test else None
        path.append({
            "labelled": point["labelled"], "decision": result.decision,
            "difference": round(cur.difference, 5) if cur else None,
            "low": round(cur.low, 5) if cur else None, "high": round(cur.high, 5) if cur else None,
            "log_likelihood_ratio": round(cur.log_likelihood_ratio, 3) if cur else None,
        })  # fmt: skip
    final = analysis.analyse(table, settings)
    by_metric = {}
    for metric in ("accuracy", "log_loss", "auc"):
        r = analysis.analyse(table, analysis.Settings(control="A", treatments=(treatment,),
                                                      metric=metric))  # fmt: skip
        crossed = r.comparisons[0].test.crossed
        by_metric[metric] = {
            "decision": r.decision,
            "reasons": r.reasons,
            "outcomes_to_decision": crossed.labelled_rows if crossed else None,
        }
    test = final.comparisons[0].test
    variants = {v.variant: {"rows": v.rows, "share": round(v.share, 4),
                            "accuracy": round(v.accuracy.value, 4),
                            "accuracy_ci": [round(v.accuracy.low, 4), round(v.accuracy.high, 4)],
                            "auc": round(v.auc.value, 4), "log_loss": round(v.log_loss.value, 4),
                            "latency_p99_ms": round(v.latency_p99_ms.value, 2)}
                for v in final.variants}  # fmt: skip
    decided_at = test.crossed.labelled_rows if test.crossed else None
    return {"decision": final.decision, "reasons": final.reasons, "variants": variants,
            "outcomes_to_decision": decided_at, "mixture_sd": round(test.mixture_sd, 5),
            "labelled_rows": final.labelled_rows, "path": path, "metrics": by_metric,
            "launcher": run_launcher(run["log"], treatment)}  # fmt: skip


def run_launcher(log: str, treatment: str) -> dict[str, Any]:
    """The component as its container runs it, once, on the whole folder."""
    import tempfile

    from kfpkit import testing

    outputs = {"decision": "system.Artifact", "report": "system.HTML", "metrics": "system.Metrics"}
    with tempfile.TemporaryDirectory() as tmp:
        doc = testing.executor_input(Path(tmp) / "out", {"logs": log, "control_variant": "A",
                                                         "treatment_variant": treatment},
                                     outputs, output_params=["decision_value"])  # fmt: skip
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m",
                               "kfpkit.components.online_experiment.launcher",
                               "--executor_input", json.dumps(doc)],
                              capture_output=True, text=True, timeout=600)  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-3000:])
        return {"decision_value": (Path(tmp) / "out" / "decision_value").read_text(),
                "seconds": round(time.perf_counter() - started, 2)}  # fmt: skip


def bandit_regret(run: dict, scored: pa.Table, treatment: str) -> dict[str, Any]:
    """Correct predictions the bandit lost, against a fixed 50/50 split and against always
    serving the better variant, from the counterfactual scores of the same rows."""
    labels = scored[LABEL].to_numpy()
    correct = {n: (scored[f"p_{n}"].to_numpy() >= 0.5) == (labels == 1) for n in ("A", treatment)}
    chosen = np.array([s["row"] for s in run["served"]])  # replay and scores share the order
    variant = [s["variant"] for s in run["served"]]
    got = np.array([correct[v][k] for v, k in zip(variant, chosen, strict=True)], dtype=float)
    best = max(("A", treatment), key=lambda n: correct[n][chosen].sum())
    fifty = 0.5 * (correct["A"][chosen].astype(float) + correct[treatment][chosen])
    oracle = correct[best][chosen].astype(float)
    share = np.cumsum([v == treatment for v in variant]) / np.arange(1, len(variant) + 1)
    steps = sorted({*range(499, len(variant), 500), len(variant) - 1})
    return {
        "rows": len(variant), "better_variant": best,
        "correct": {"bandit": int(got.sum()), "fixed_50_50_expected": round(float(fifty.sum()), 1),
                    "always_better": int(oracle.sum())},
        "regret_vs_better": round(float(oracle.sum() - got.sum()), 1),
        "regret_of_50_50_vs_better": round(float(oracle.sum() - fifty.sum()), 1),
        "saved_vs_50_50": round(float(got.sum() - fifty.sum()), 1),
        "treatment_share": round(float(share[-1]), 4),
        "treatment_share_path": [{"requests": s + 1, "cumulative_share": round(float(share[s]), 4),
                                  "share_last_500": round(float(np.mean(
                                      [v == treatment for v in variant[max(0, s - 499): s + 1]])),
                                      4),
                                  "regret_vs_better": round(float((oracle[: s + 1] - got[: s + 1])
                                                                  .sum()), 1),
                                  "regret_of_50_50": round(float((oracle[: s + 1]
                                                                  - fifty[: s + 1]).sum()), 1)}
                                 for s in steps],
    }  # fmt: skip


def replayed_accuracy(scored: pa.Table) -> dict[str, Any]:
    """Each variant's accuracy on all the replayed rows (what the split's halves estimate),
    per year and whole, and B - A, W - A on the same rows (paired)."""
    labels = scored[LABEL].to_numpy() == 1
    correct = {n: (scored[f"p_{n}"].to_numpy() >= 0.5) == labels for n in ("A", "B", "W")}
    years = scored["year"].to_numpy()
    out: dict[str, Any] = {"rows": scored.num_rows}
    for year in YEARS:
        out[str(year)] = {n: round(float(c[years == year].mean()), 4) for n, c in correct.items()}
    out["all"] = {n: round(float(c.mean()), 4) for n, c in correct.items()}
    for n in ("B", "W"):
        out[f"{n}_minus_A"] = round(float(correct[n].mean() - correct["A"].mean()), 4)
    return out


def resplits(work: Path, name: str, treatment: str, salts: int, replay: pa.Table,
             ) -> dict[str, Any]:  # fmt: skip
    """The served A/B experiment is one draw of the sticky split. Other draws of the same
    rows, offline: the logged requests (same order, times, labels and feedback times) with
    the variant re-hashed under another salt (``kfpkit.serving.routing.assign_variants``, the
    server's hash) and each row's prediction taken from that variant's counterfactual score.
    First checks that the server's own salt reproduces the logged variants."""
    from kfpkit.components.online_experiment import analysis
    from kfpkit.serving.routing import assign_variants
    from kfpkit.serving.served_logs import read_served

    table = read_served(str(work / "logs" / name / "employment"))
    table = table.take(pc.sort_indices(table, [("timestamp", "ascending")]))
    if table.num_rows != replay.num_rows:
        raise RuntimeError(f"{name}: {table.num_rows} logged rows, {replay.num_rows} replayed")
    if table["label"].to_pylist() != [float(v) for v in replay[LABEL].to_pylist()]:
        raise RuntimeError(f"{name}: the log's labels are not the replayed rows' in order")
    ids = replay["id"].to_pylist()
    variants = ["A", treatment]
    reproduced = assign_variants(ids, variants, [1.0, 1.0], "employment")
    scores = {v: replay[f"p_{v}"].to_numpy() for v in variants}
    needed, decisions = [], {analysis.PROMOTE: 0, analysis.ROLLBACK: 0, analysis.CONTINUE: 0}
    for salt in range(salts):
        chosen = np.array(assign_variants(ids, variants, [1.0, 1.0], f"resplit-{salt}"))
        prediction = np.where(chosen == "A", scores["A"], scores[treatment])
        draw = table.set_column(table.schema.get_field_index("variant"), "variant",
                                pa.array(chosen.tolist()))  # fmt: skip
        draw = draw.set_column(draw.schema.get_field_index("prediction"), "prediction",
                               pa.array(prediction))  # fmt: skip
        result = analysis.analyse(draw, analysis.Settings(control="A", treatments=(treatment,)))
        decisions[result.decision] += 1
        crossed = result.comparisons[0].test.crossed
        if crossed is not None:
            needed.append(crossed.labelled_rows)
    return {
        "salts": salts,
        "server_assignment_reproduced": reproduced == table["variant"].to_pylist(),
        "decisions": decisions,
        "outcomes_to_decision": sorted(needed),
        "quartiles": np.percentile(needed, [25, 50, 75]).tolist() if needed else None,
    }


def monitoring_windows(work: Path, per_year: int) -> dict[str, Any]:
    """Larger windows for monitor_serving: A alone serves ``per_year`` held-out rows of each
    year (seeded sample; labels as feedback), then the monitor stage reads each year."""
    held = pq.read_table(work / "held_out.parquet")
    rng = np.random.default_rng(SEED + 1)
    parts = []
    for year in YEARS:
        index = np.flatnonzero(held["year"].to_numpy() == year)
        parts.append(held.take(rng.permutation(index)[:per_year]))
    sample = pa.concat_tables(parts)
    rows = sample.select([*_features(), LABEL]).to_pylist()
    print(f"[bench_online_replay] monitoring windows: {len(rows)} requests to A", flush=True)
    run = serve_experiment(work, "d_monitor_A", {"routing": []}, rows,
                           sample["year"].to_pylist())  # fmt: skip
    started = time.perf_counter()
    subprocess.run([str(TFDV_PYTHON), __file__, "monitor", "--work", str(work), "--log",
                    run["log"], "--windows", json.dumps(run["years"]),
                    "--output", "monitor_large.json"], check=True)  # fmt: skip
    doc = json.loads((work / "monitor_large.json").read_text())
    return {"started": _now(), "per_year": per_year,
            "rows": {str(y): int(t.num_rows) for y, t in zip(YEARS, parts, strict=True)},
            "requests_per_s": run["requests_per_s"], "serve_seconds": run["seconds"],
            "monitor_s": round(time.perf_counter() - started, 1),
            "command": run["command"], "years": doc}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("stage", nargs="?", default="all", choices=("all", "train", "monitor"))
    parser.add_argument("--per-year", type=int, default=3000, help="rows replayed per year")
    parser.add_argument("--requests-per-year", type=int, default=0,
                        help="replay only the first N trained-for rows of each year")  # fmt: skip
    parser.add_argument("--results", default=str(RESULTS))
    parser.add_argument("--work", default=str(WORK))
    parser.add_argument("--log", default="")
    parser.add_argument("--output", default="monitor.json")
    parser.add_argument("--resplits", type=int, default=20,
                        help="other sticky splits of the A/B logs, analysed offline")  # fmt: skip
    parser.add_argument("--monitor-rows", type=int, default=12_000,
                        help="rows a year A alone serves for monitor_serving's larger windows "
                        "(0: none)")  # fmt: skip
    parser.add_argument("--windows", default="")
    parser.add_argument("--experiments", default=",".join(EXPERIMENTS))
    parser.add_argument("--retrain", action="store_true", help="train even if models exist")
    args = parser.parse_args()
    work = Path(args.work)
    if args.stage == "train":
        stage_train(work, args.per_year)
        return 0
    if args.stage == "monitor":
        stage_monitor(work, args.log, args.windows, args.output)
        return 0

    started = datetime.now(UTC)
    timings = {}
    if args.retrain or not (work / "train.json").exists():
        t = time.perf_counter()
        subprocess.run([str(TRAIN_PYTHON), __file__, "train", "--per-year", str(args.per_year),
                        "--work", str(work)], check=True)  # fmt: skip
        timings["train_s"] = round(time.perf_counter() - t, 1)
    trained = json.loads((work / "train.json").read_text())
    replay = pq.read_table(work / "replay.parquet")
    scored = pq.read_table(work / "replay_scored.parquet")
    if args.requests_per_year:  # the first rows of each year (a shorter run)
        keep = np.concatenate([np.flatnonzero(replay["year"].to_numpy() == y)[
            : args.requests_per_year] for y in YEARS])  # fmt: skip
        replay, scored = replay.take(keep), scored.take(keep)
    names = ["id", *_features(), LABEL]
    years = replay["year"].to_pylist()
    results: dict[str, Any] = {}
    results_path = Path(args.results)
    previous = json.loads(results_path.read_text()) if results_path.exists() else {}
    for name in filter(None, args.experiments.split(",")):
        spec = EXPERIMENTS[name]
        # ab routing takes the unit from the instance's id (and drops it: no model input);
        # the other policies need no unit, and the server refuses fields no variant takes
        columns = names if "ab" in spec["routing"] else names[1:]
        rows = replay.select(columns).to_pylist()
        print(f"[bench_online_replay] {name}: {len(rows)} requests", flush=True)
        run = serve_experiment(work, name, spec, rows, years)
        out = {k: v for k, v in run.items() if k not in ("served", "checkpoints", "log")}
        out["analysis"] = analyse_experiment(run, spec["treatment"])
        if "bandit" in spec["routing"]:
            out["bandit"] = bandit_regret(run, scored, spec["treatment"])
        results[name] = out
        print(json.dumps({k: out["analysis"][k] for k in ("decision", "outcomes_to_decision",
                                                          "variants")}), flush=True)  # fmt: skip
        if name == "a_ab_A_vs_B":
            t = time.perf_counter()
            subprocess.run([str(TFDV_PYTHON), __file__, "monitor", "--work", str(work),
                            "--log", run["log"], "--windows", json.dumps(run["years"])],
                           check=True)  # fmt: skip
            timings["monitor_s"] = round(time.perf_counter() - t, 1)
    large = previous.get("monitoring_large")
    if args.monitor_rows:
        large = monitoring_windows(work, args.monitor_rows)
    experiments = {**previous.get("experiments", {}), **results}
    for name, experiment in experiments.items():
        if args.resplits and "ab" in EXPERIMENTS[name]["routing"]:
            treatment = EXPERIMENTS[name]["treatment"]
            experiment["resplits"] = resplits(work, name, treatment, args.resplits, scored)
            print(f"[bench_online_replay] {name} resplit: {experiment['resplits']}", flush=True)
    doc = {
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "load_average": os.getloadavg()},
        "per_year": args.requests_per_year or args.per_year, "hyperparameters": HYPERPARAMETERS,
        "feedback_batch": FEEDBACK_BATCH, "threshold": THRESHOLD, "timings": timings,
        "training": trained, "replayed_rows_accuracy": replayed_accuracy(scored),
        "experiments": experiments,
        "monitoring": json.loads((work / "monitor.json").read_text())
        if (work / "monitor.json").exists() else previous.get("monitoring"),
        "monitoring_large": large,
    }  # fmt: skip
    if not results and previous:  # only the monitoring windows ran: the experiments' run stays
        for key in ("started", "finished", "machine", "per_year", "timings"):
            doc[key] = previous[key]
    results_path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"[bench_online_replay] wrote {results_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
