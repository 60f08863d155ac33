"""The ``kfpkit`` command.

kfpkit compile [--target local|kubeflow|vertex] [--settings FILE] [--out compiled]
kfpkit images push --registry HOST/PATH [--lock images/pushed.json] [FAMILY ...]
kfpkit run training --local [--emulator] [--rows N] [--param name=value ...]
kfpkit run training --local --data PATH --label COLUMN [--key COLUMN ...]
kfpkit serve MODEL_DIR|--variant NAME=DIR[:W]... [--routing fixed|ab|bandit] [--shadow DIR]
    [--log-dir DIR] [--port N] [--smoke-test N]
kfpkit serve-sink --log-dir DIR [--port N]   (KServe's inference logger -> the log layout)
kfpkit submit|schedule COMPILED.yaml --target kubeflow|vertex [--cron CRON] ...; kfpkit runs
kfpkit runs compare RUN_ID...; kfpkit models lineage NAME[:VERSION]
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from pathlib import Path
from typing import Any

DEMO_PROJECT = "kfpkit-demo"
DEMO_TABLE = f"{DEMO_PROJECT}.demo.employment"
DEMO_EMULATOR_PORT = 9050


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _parse_params(items: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValueError(f"--param expects name=value, got {item!r}")
        try:
            params[name] = json.loads(value)  # lists, dicts, numbers
        except json.JSONDecodeError:
            params[name] = value
    return params


def cmd_compile(args: argparse.Namespace) -> int:
    from kfpkit import targets
    from kfpkit.compile import compile_all

    settings = targets.load(args.settings)
    for path in compile_all(Path(args.out), settings, args.target):
        print(f"wrote {path}")
    return 0


def cmd_images_push(args: argparse.Namespace) -> int:
    from kfpkit.image_push import push

    for family, ref in push(args.registry, args.families, Path(args.lock)).items():
        print(f"pushed {family}: {ref}")
    print(f"wrote {args.lock}")
    return 0


def cmd_docs(args: argparse.Namespace) -> int:
    from kfpkit.component_table import main as table_main

    return table_main(["--readme", args.readme, "--check" if args.check else "--write"])


def _run_window(args: argparse.Namespace, params: dict[str, Any], root: Path) -> int:
    """One continuous-training window of the demo data (its year's rows as one table)."""
    from kfpkit import continuous
    from kfpkit.emulator import Emulator

    if args.pipeline != continuous.PIPELINE or not args.emulator:
        raise ValueError("--window runs continuous_training on the demo data: add --emulator")
    root.mkdir(parents=True, exist_ok=True)
    port = DEMO_EMULATOR_PORT if args.cache and _port_free(DEMO_EMULATOR_PORT) else 0
    log = str(root.absolute() / "bqemulator.log")
    with Emulator(project=DEMO_PROJECT, log_path=log, rest_port=port) as emu:
        run = continuous.run_window(root, args.window, emu, params, cache=args.cache)
    print(f"[kfpkit] window {run.window}: {'retrained' if run.decision['retrain'] else 'kept'} "
          f"in {run.seconds:.1f}s; ran {', '.join(run.ran)}"
          + (f"; from cache {', '.join(run.from_cache)}" if run.from_cache else "")
          + (f"; skipped {', '.join(run.skipped)}" if run.skipped else ""))  # fmt: skip
    for reason in run.decision["reasons"]:
        print(f"  - {reason}")
    decision = continuous.layout(root)["state"] / "windows" / run.window / "decision.json"
    print(f"  decision: {decision}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from kfpkit.local_run import stop_on_signals

    with stop_on_signals():  # as cmd_run
        return _replay(args)


def _replay(args: argparse.Namespace) -> int:
    from kfpkit import continuous

    if args.cache:
        from kfpkit.local_run import pin_images_by_content

        pin_images_by_content()
    windows = tuple(w.strip() for w in args.windows.split(",") if w.strip())
    result = continuous.replay(Path(args.pipeline_root), windows, _parse_params(args.param),
                               cache=args.cache, fresh=not args.keep_state)  # fmt: skip
    print(continuous.table(result))
    print(f"[kfpkit] replay in {result['total_seconds']}s; results: "
          f"{continuous.layout(Path(args.pipeline_root))['base'] / 'replay.json'}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from kfpkit.local_run import stop_on_signals

    # SIGTERM/SIGINT/SIGHUP: the running step is stopped, the emulator too, the outcome is
    # recorded as cancelled, and main() exits 130
    with stop_on_signals():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    if not args.local:
        raise ValueError(
            "Only --local runs are supported so far (submit comes with `kfpkit submit`)"
        )
    from kfpkit.local_run import pin_images_by_content, run_local, summary

    params = _parse_params(args.param)
    root = Path(args.pipeline_root)
    if args.data and args.cache:  # a changed file at the same path would come from the cache
        raise ValueError("--data with --cache is not supported: KFP's cache keys the split "
                         "on the data's path, not its content")  # fmt: skip
    if args.cache:
        pin_images_by_content()
    if args.window:
        return _run_window(args, params, root)
    if args.data:
        return _run_data(args, params, root)
    if not args.emulator:
        print(summary(run_local(args.pipeline, params, root, enable_caching=args.cache,
                                experiment=args.experiment)))
        return 0

    from kfpkit import demo_data
    from kfpkit.emulator import Emulator

    parquet = demo_data.scaled_parquet(args.rows) if args.rows else demo_data.demo_parquet()
    log = root.absolute() / "bqemulator.log"
    root.mkdir(parents=True, exist_ok=True)
    print(f"[kfpkit] starting the BigQuery emulator (log: {log})", flush=True)
    # The emulator's endpoint and the table are inputs of the split step: with the cache on,
    # a fixed port and a table named after the data's row count let an unchanged re-run
    # take the split from the cache, and a different --rows miss it.
    port = DEMO_EMULATOR_PORT if args.cache and _port_free(DEMO_EMULATOR_PORT) else 0
    table = f"{DEMO_TABLE}_{args.rows}" if args.rows else DEMO_TABLE
    with Emulator(project=DEMO_PROJECT, log_path=str(log), rest_port=port) as emu:
        rows = demo_data.load_into_bigquery(emu.client(), parquet, table)
        print(
            f"[kfpkit] loaded {rows} rows from {parquet} into {table} at {emu.endpoint}",
            flush=True,
        )
        arguments = {
            "project": DEMO_PROJECT,
            "source_table": table,
            "destination_dataset": "demo_splits",
            "bigquery_endpoint": emu.endpoint,
            # under the pipeline root: the only host folder the step containers see
            "serving_model_uri": str(root.absolute() / "serving" / "employment"),
            **params,
        }
        result = run_local(args.pipeline, arguments, root, enable_caching=args.cache,
                           experiment=args.experiment)
        print(summary(result))
        print("[kfpkit] BigQuery tables live only as long as the emulator; the Parquet files stay.")
    return 0


def _run_data(args: argparse.Namespace, params: dict[str, Any], root: Path) -> int:
    """The training pipeline on the user's own Parquet/CSV data: no BigQuery, no emulator."""
    from kfpkit import own_data
    from kfpkit.local_run import run_local, summary

    if args.pipeline != "training" or args.emulator or args.rows:
        raise ValueError("--data runs the training pipeline on your data: "
                         "`kfpkit run training --local --data PATH --label COLUMN`, "
                         "without --emulator or --rows")  # fmt: skip
    arguments = own_data.arguments(args.data, args.label, args.key, root, params)
    source = arguments["source_table"]
    print(f"[kfpkit] {source}: key {arguments['key_columns']}, label "
          f"{arguments['label_column']!r}; the split step splits it as BigQuery would",
          flush=True)  # fmt: skip
    result = run_local(args.pipeline, arguments, root, own_data.docker_args(source),
                       enable_caching=args.cache, experiment=args.experiment)  # fmt: skip
    print(summary(result))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from kfpkit.serve import ServeOptions, serve

    options = ServeOptions(
        model_dir=args.model_dir,
        name=args.name,
        shadow_dir=args.shadow or "",
        log_dir=args.log_dir or "",
        port=args.port,
        runner=args.runner,
        python=args.python,
        image=args.image,
        variants=tuple(args.variant),
        experiment_flags=experiment_flags(args),
        schema=args.schema,
        explain_baseline=args.explain_baseline,
        explain_method=args.explain_method,
    )
    return serve(options, smoke_rows=args.smoke_test, data=args.data)


EXPERIMENT_FLAGS = ("routing", "unit_field", "unit_header", "unit_salt", "bandit", "epsilon",
                    "bandit_floor", "feedback_retention_seconds")  # fmt: skip


def experiment_flags(args: argparse.Namespace) -> tuple[str, ...]:
    """The routing and feedback flags given, as the model server takes them."""
    flags: list[str] = []
    for name in EXPERIMENT_FLAGS:
        value = getattr(args, name)
        if value is not None:
            flags += [f"--{name.replace('_', '-')}", str(value)]
    return tuple(flags)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="kfpkit", description=__doc__.split("\n")[0] if __doc__ else None
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "compile",
        help="compile every pipeline (for every target) and component into YAML",
        description="Writes OUT/<pipeline>.yaml (target local), OUT/<target>/<pipeline>.yaml "
        "and OUT/components/<component>.yaml; with --target only that target's pipelines.",
    )
    p.add_argument("--target", help="one target of the settings file (default: all of them)")
    p.add_argument("--settings", metavar="FILE", help="targets file (default: the built-in "
                   "pipelines/targets.yaml: local, kubeflow, vertex)")  # fmt: skip
    p.add_argument("--out", default="compiled")
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("images", help="kfpkit's container images")
    images_sub = p.add_subparsers(dest="images_command", required=True)
    p = images_sub.add_parser(
        "push",
        help="push the built images to a registry, tagged by version and content hash",
        description="Pushes each family's local image as REGISTRY/<family>:<version> and "
        "REGISTRY/<family>:<content hash>, and records the pushed digests "
        "(REGISTRY/<family>@sha256:...) in --lock, which a targets file's images.lock reads.",
    )
    p.add_argument("--registry", required=True, metavar="HOST/PATH")
    p.add_argument("--lock", default="images/pushed.json", metavar="FILE")
    p.add_argument("families", nargs="*", metavar="FAMILY", help="default: core tfdv train")
    p.set_defaults(func=cmd_images_push)

    p = sub.add_parser("docs", help="write README.md's component table from the specs")
    p.add_argument("--readme", default="README.md")
    p.add_argument("--check", action="store_true", help="exit 1 if the table is stale")
    p.set_defaults(func=cmd_docs)

    p = sub.add_parser("run", help="run a pipeline")
    p.add_argument("pipeline")
    p.add_argument(
        "--local", action="store_true", help="run on this machine with kfp.local (Docker)"
    )
    p.add_argument(
        "--emulator",
        action="store_true",
        help="start the BigQuery emulator, load the demo data and point the pipeline at it",
    )
    p.add_argument(
        "--rows", type=int, default=0, help="with --emulator: upsample the demo data to N rows"
    )
    p.add_argument(
        "--data",
        default="",
        metavar="PATH",
        help="training on your own data: a Parquet or CSV file or folder (path or gs:// URI), "
        "split in the split step as BigQuery would; no BigQuery, no emulator",
    )
    p.add_argument("--label", default="", metavar="COLUMN", help="with --data: the binary label")
    p.add_argument(
        "--key",
        action="append",
        default=[],
        metavar="COLUMN",
        help="with --data: a key column (repeat for several; default: id)",
    )
    p.add_argument("--pipeline-root", default="local_outputs")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument(
        "--cache",
        action="store_true",
        help="reuse the outputs of steps whose image, command and inputs are unchanged "
        "(kfp.local's cache under the pipeline root; images pinned by content)",
    )
    p.add_argument(
        "--window",
        default="",
        help="continuous_training with --emulator: the demo year (2015-2018) this run takes",
    )
    p.add_argument("--experiment", default="", help="the MLflow experiment the run is recorded "
                   "in (in the registry's store; default: the pipeline's name)")  # fmt: skip
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "replay",
        help="continuous training on the demo data's years, one window a run, then scores",
    )
    p.add_argument("--windows", default="2015,2016,2017,2018")
    p.add_argument("--pipeline-root", default="local_outputs")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--cache", action="store_true", help="as kfpkit run --cache")
    p.add_argument(
        "--keep-state",
        action="store_true",
        help="continue from the state and models of an earlier replay instead of starting empty",
    )
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser(
        "serve",
        help="serve a SavedModel locally with KServe's model server (127.0.0.1 only)",
        description="Serves MODEL_DIR (<version>/saved_model.pb folders) over KServe V1 and V2 "
        "on 127.0.0.1, in the train image (Docker) or a Python environment that has kserve.",
    )
    p.add_argument("model_dir", metavar="MODEL_DIR", nargs="?", default="")
    p.add_argument("--variant", action="append", default=[], metavar="NAME=MODEL_DIR[:WEIGHT]",
                   help="serve this variant (repeatable; instead of MODEL_DIR)")  # fmt: skip
    p.add_argument("--routing", choices=("fixed", "ab", "bandit"),
                   help="how variants share requests (default fixed: by weight)")  # fmt: skip
    p.add_argument("--unit-field", help="ab: the request field naming the unit (e.g. id)")
    p.add_argument("--unit-header", help="ab: the header naming the unit (e.g. X-User-Id)")
    p.add_argument("--unit-salt", help="ab: hashed before the unit (default: the model name)")
    p.add_argument("--bandit", choices=("thompson", "epsilon-greedy"))
    p.add_argument("--epsilon", type=float, help="epsilon-greedy: exploration (default 0.1)")
    p.add_argument("--bandit-floor", type=float,
                   help="thompson: least traffic share of each variant (default 0.05)")  # fmt: skip
    p.add_argument("--feedback-retention-seconds", type=float,
                   help="how long an answer takes feedback (default 86400)")  # fmt: skip
    p.add_argument("--schema", default="", help="TFDV schema.pbtxt: flag out-of-domain values "
                   "in the request log")  # fmt: skip
    p.add_argument("--shadow", metavar="CANDIDATE_DIR", help="also answer with this candidate, "
                   "off the client's path, and report the agreement")  # fmt: skip
    p.add_argument("--log-dir", metavar="DIR", help="log requests and answers to Parquet here")
    p.add_argument("--explain-baseline", default="", metavar="PATH",
                   help=":explain's baseline: JSON {feature: value}, evaluate's "
                   "explanation.json or Parquet data (default: the missing-value row)")  # fmt: skip
    p.add_argument("--explain-method", default="",
                   choices=("", "auto", "integrated_gradients", "sampled_shapley"),
                   help=":explain's attribution method (default auto)")  # fmt: skip
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--name", default="", help="model name in URLs (default: MODEL_DIR's name)")
    p.add_argument("--runner", choices=("docker", "python"), default="docker")
    p.add_argument("--python", default="", help="with --runner python: the interpreter")
    p.add_argument("--image", default="", help="with --runner docker: default the train image")
    p.add_argument(
        "--smoke-test",
        type=int,
        default=0,
        metavar="N",
        help="send N rows of --data over V1 and V2, print answers and latency, stop",
    )
    p.add_argument("--data", default="", help="Parquet file or folder for --smoke-test")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser(
        "serve-sink",
        help="receive KServe's inference logger CloudEvents, write the served-traffic log",
        description="An HTTP sink for KServe's logger (spec.predictor.logger.url: "
        "http://<sink>/<model_name>): pairs request and response events by id and writes "
        "<log-dir>/<model_name>/data-*.parquet (kfpkit.serving.served_logs reads them).",
    )
    from kfpkit.serving.logger_sink import add_arguments, run_from_args

    add_arguments(p)
    def run_sink(args: argparse.Namespace) -> int:
        run_from_args(args)
        return 0

    p.set_defaults(func=run_sink)

    from kfpkit.submit.cli import add_commands

    add_commands(sub)  # submit, schedule, runs
    from kfpkit.tracking.cli import add_commands as add_model_commands

    add_model_commands(sub)  # models lineage

    args = parser.parse_args(argv)
    from kfpkit.runtime.executor import EXIT_CANCELLED, Cancelled

    try:
        return int(args.func(args))
    except Cancelled as e:  # a signal (stop_on_signals): cleaned up, outcome recorded
        print(f"kfpkit: cancelled: {e}", file=sys.stderr)
        return EXIT_CANCELLED
    except ValueError as e:  # the user's input: exit 2, like the components' launchers
        print(f"kfpkit: error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:
        print(f"kfpkit: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
