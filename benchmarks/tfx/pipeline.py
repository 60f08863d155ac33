"""The TFX 1.16 side of ``benchmarks/bench_vs_tfx.py``: builds and runs one pipeline.

Runs in the TFX environment (``.venvs/tfx-bench``), started by the driver once per round,
then once more, untimed, to read the results:

    python benchmarks/tfx/pipeline.py --config CONFIG.json --out TIMES.json
    python benchmarks/tfx/pipeline.py --config CONFIG.json --out RESULT.json --collect

The pipeline does the work of kfpkit's training pipeline the TFX way, with LocalDagRunner and
an on-disk ML Metadata SQLite store (fresh per round: no cache, no baseline model):

- CsvExampleGen: train/eval/test read from the driver's per-split CSVs (the rows kfpkit's
  split assigns: same rows on both sides);
- StatisticsGen over every split, SchemaGen from train, ExampleValidator of eval and test
  against that schema, as kfpkit's validation step does (TFX has no drift check without a
  curated schema; kfpkit's validation also checks drift against train);
- Trainer with ``trainer_module.py`` (kfpkit's model shape and hyperparameters);
- a LatestBlessedModelStrategy resolver (the baseline: none on a fresh store), Evaluator (TFMA)
  on test: AUC, accuracy, example count, overall and per slice column, blessed when AUC >= the
  minimum and (with a baseline) at most the allowed regression below it;
- Pusher to a local folder when blessed.

Per-component wall times come from ML Metadata: each execution's create and last-update
times (the launcher registers the execution before its executor starts and updates it when
its outputs are published). The run writes the phases of its process (imports done, run start
and end) as epoch seconds; the collection the steps, the Evaluator's metrics, the blessing,
the split sizes from StatisticsGen and the Trainer's summary.
"""

from __future__ import annotations

import time

PROCESS_START = time.time()  # before the heavy imports: they are part of what is measured

import argparse  # noqa: E402
import importlib.metadata  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

import tensorflow_model_analysis as tfma  # noqa: E402
from tfx import v1 as tfx  # noqa: E402

IMPORTS_DONE = time.time()

PIPELINE_NAME = "tfx-bench"
SPLITS = {"train": 8, "eval": 1, "test": 1}  # kfpkit's default 80/10/10 (config "splits")


def build_pipeline(config: dict, root: str) -> tfx.dsl.Pipeline:
    here = os.path.dirname(os.path.abspath(__file__))
    # The driver writes one CSV folder per split with the rows kfpkit's split assigns, so
    # both sides train and test on the same rows; CsvExampleGen reads them as its splits.
    example_gen = tfx.components.CsvExampleGen(
        input_base=config["data_dir"],
        input_config=tfx.proto.Input(
            splits=[
                tfx.proto.Input.Split(name=name, pattern=f"{name}/*")
                for name in (config.get("splits") or SPLITS)
            ]
        ),
    )
    # kfpkit's validation step: statistics of every split, schema from train, eval and test
    # validated against it.
    statistics_gen = tfx.components.StatisticsGen(
        examples=example_gen.outputs["examples"],
        exclude_splits=config.get("statistics_exclude_splits", []),
    )
    schema_gen = tfx.components.SchemaGen(
        statistics=statistics_gen.outputs["statistics"],
        infer_feature_shape=True,
        exclude_splits=[s for s in (config.get("splits") or SPLITS) if s != "train"],
    )
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"],
        schema=schema_gen.outputs["schema"],
        exclude_splits=config.get("validation_exclude_splits", ["train"]),
    )
    trainer = tfx.components.Trainer(
        module_file=os.path.join(here, "trainer_module.py"),
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        train_args=tfx.proto.TrainArgs(splits=["train"]),
        eval_args=tfx.proto.EvalArgs(splits=["eval"]),
        custom_config={
            "label": config["label"],
            "exclude_columns": config["exclude_columns"],
            "categorical_features": config["categorical_features"],
            "hyperparameters": config["hyperparameters"],
        },
    )
    # kfpkit trains only on data that passed validation (.after(validation)); same here.
    trainer.add_upstream_node(example_validator)
    model_resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")
    eval_config = tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(signature_name="serving_default", label_key=config["label"])],
        slicing_specs=[tfma.SlicingSpec()]
        + [tfma.SlicingSpec(feature_keys=[c]) for c in config["slice_columns"]],
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[
                    tfma.MetricConfig(class_name="ExampleCount"),
                    tfma.MetricConfig(class_name="BinaryAccuracy"),
                    tfma.MetricConfig(
                        class_name="AUC",
                        threshold=tfma.MetricThreshold(
                            value_threshold=tfma.GenericValueThreshold(
                                lower_bound={"value": config["min_auc"]}
                            ),
                            # ignored without a baseline (a fresh store)
                            change_threshold=tfma.GenericChangeThreshold(
                                direction=tfma.MetricDirection.HIGHER_IS_BETTER,
                                absolute={"value": -config["max_auc_regression"]},
                            ),
                        ),
                    ),
                ]
            )
        ],
    )
    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=model_resolver.outputs["model"],
        example_splits=["test"],
        eval_config=eval_config,
    )
    with tfx.dsl.Cond(evaluator.outputs["blessing"].future()[0].custom_property("blessed") == 1):
        pusher = tfx.components.Pusher(
            model=trainer.outputs["model"],
            push_destination=tfx.proto.PushDestination(
                filesystem=tfx.proto.PushDestination.Filesystem(
                    base_directory=os.path.join(root, "serving")
                )
            ),
        )
    return tfx.dsl.Pipeline(
        pipeline_name=PIPELINE_NAME,
        pipeline_root=os.path.join(root, "pipeline"),
        components=[
            example_gen,
            statistics_gen,
            schema_gen,
            example_validator,
            trainer,
            model_resolver,
            evaluator,
            pusher,
        ],
        enable_cache=False,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            os.path.join(root, "metadata.sqlite")
        ),
        beam_pipeline_args=config.get("beam_pipeline_args") or [],
    )


def _outputs(store, execution_id: int) -> dict[str, list]:
    """Output key -> artifacts of one execution."""
    from ml_metadata.proto import metadata_store_pb2

    events = [
        e
        for e in store.get_events_by_execution_ids([execution_id])
        if e.type == metadata_store_pb2.Event.OUTPUT
    ]
    artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
    out: dict[str, list] = {}
    for e in events:
        key = e.path.steps[0].key if e.path.steps else ""
        out.setdefault(key, []).append(artifacts[e.artifact_id])
    return out


def read_metadata(db: str) -> list[dict]:
    """One entry per execution, in start order: node id, state, epoch start/end, outputs."""
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    store = metadata_store.MetadataStore(
        tfx.orchestration.metadata.sqlite_metadata_connection_config(db)
    )
    node_type = store.get_context_type("node")
    steps = []
    for execution in store.get_executions():
        nodes = [
            c.name
            for c in store.get_contexts_by_execution(execution.id)
            if c.type_id == node_type.id
        ]
        node = nodes[0].split(".", 1)[-1] if nodes else f"execution-{execution.id}"
        outputs = _outputs(store, execution.id)
        steps.append(
            {
                "node": node,
                "state": metadata_store_pb2.Execution.State.Name(execution.last_known_state),
                "start": execution.create_time_since_epoch / 1000.0,
                "end": execution.last_update_time_since_epoch / 1000.0,
                "outputs": {
                    key: [
                        {
                            "uri": a.uri,
                            "properties": {
                                k: getattr(v, v.WhichOneof("value"))
                                for k, v in a.custom_properties.items()
                                if v.WhichOneof("value")
                                in ("int_value", "double_value", "string_value", "bool_value")
                            },
                        }
                        for a in arts
                    ]
                    for key, arts in outputs.items()
                },
            }
        )
    return sorted(steps, key=lambda s: s["start"])


def evaluation_metrics(uri: str) -> dict:
    """Overall and per-slice metrics from the Evaluator's output."""
    overall: dict = {}
    slices: dict = {}
    for m in tfma.load_metrics(uri):
        # MetricValue.double_value is a google.protobuf.DoubleValue wrapper
        values = {
            kv.key.name: kv.value.double_value.value
            for kv in m.metric_keys_and_values
            if kv.value.WhichOneof("type") == "double_value"
        }
        keys = m.slice_key.single_slice_keys
        if not keys:
            overall = values
            continue
        name = "/".join(f"{k.column}={getattr(k, k.WhichOneof('kind'))}" for k in keys)
        slices[name] = values
    return {"overall": overall, "slices": dict(sorted(slices.items()))}


def split_sizes(statistics_uri: str) -> dict[str, int]:
    import tensorflow as tf
    from tensorflow_metadata.proto.v0 import statistics_pb2

    sizes = {}
    for split in sorted(tf.io.gfile.listdir(statistics_uri)):
        path = os.path.join(statistics_uri, split.rstrip("/"), "FeatureStats.pb")
        if not tf.io.gfile.exists(path):
            continue
        stats = statistics_pb2.DatasetFeatureStatisticsList()
        stats.ParseFromString(tf.io.gfile.GFile(path, "rb").read())
        sizes[split.rstrip("/").removeprefix("Split-")] = int(stats.datasets[0].num_examples)
    return sizes


def _write_json(path: str, doc: dict) -> None:
    with open(path + ".tmp", "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(path + ".tmp", path)


def collect(root: str) -> dict:
    """What the run left in ML Metadata and its artifacts: steps, metrics, blessing, sizes."""
    steps = read_metadata(os.path.join(root, "metadata.sqlite"))
    by_node = {s["node"]: s for s in steps}
    versions = ("tfx", "tensorflow-model-analysis", "tensorflow", "keras", "ml-metadata",
                "apache-beam")  # fmt: skip
    result: dict = {
        "steps": [{k: s[k] for k in ("node", "state", "start", "end")} for s in steps],
        "versions": {name: importlib.metadata.version(name) for name in versions}
        | {"python": sys.version.split()[0]},
    }
    evaluator = by_node.get("Evaluator")
    if evaluator:
        result["metrics"] = evaluation_metrics(evaluator["outputs"]["evaluation"][0]["uri"])
        blessing = evaluator["outputs"]["blessing"][0]["properties"]
        result["blessed"] = bool(blessing.get("blessed"))
    statistics = by_node.get("StatisticsGen")
    if statistics:
        result["split_rows"] = split_sizes(statistics["outputs"]["statistics"][0]["uri"])
    trainer = by_node.get("Trainer")
    if trainer:
        summary = os.path.join(trainer["outputs"]["model_run"][0]["uri"], "training_summary.json")
        if os.path.exists(summary):
            with open(summary) as f:
                result["training"] = json.load(f)
    pusher = by_node.get("Pusher")
    result["pushed"] = False
    if pusher:
        pushed = pusher["outputs"].get("pushed_model", [{}])[0].get("properties", {})
        result["pushed"] = bool(pushed.get("pushed"))
        result["pushed_destination"] = pushed.get("pushed_destination", "")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="JSON written by bench_vs_tfx.py")
    parser.add_argument("--out", required=True, help="JSON written by this phase")
    parser.add_argument(
        "--collect",
        action="store_true",
        help="do not run: read the results of the run under the config's root (a separate, "
        "untimed process, so that reading them costs the timed run nothing)",
    )
    args = parser.parse_args(argv)
    with open(args.config) as f:
        config = json.load(f)
    root = os.path.abspath(config["root"])
    if args.collect:
        _write_json(args.out, collect(root))
        return 0
    os.makedirs(root, exist_ok=True)
    pipeline = build_pipeline(config, root)
    run_start = time.time()
    tfx.orchestration.LocalDagRunner().run(pipeline)
    run_end = time.time()
    _write_json(
        args.out,
        {
            "process_start": PROCESS_START,
            "imports_done": IMPORTS_DONE,
            "run_start": run_start,
            "run_end": run_end,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
