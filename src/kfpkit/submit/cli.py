"""``kfpkit submit``, ``kfpkit schedule`` and ``kfpkit runs`` (added to kfpkit.cli's parser).

kfpkit submit COMPILED.yaml --target kubeflow|vertex [--param name=value ...] [--params FILE]
kfpkit schedule COMPILED.yaml --target kubeflow|vertex --cron "[TZ=Area/City ]m h dom mon dow"
kfpkit runs --target kubeflow|vertex
kfpkit runs compare RUN_ID... [--target local|kubeflow|vertex] [--tracking-uri DB]
"""

from __future__ import annotations

import argparse
import os
from typing import Any

KFP_DEFAULT_EXPERIMENT = "Default"
LOCAL_TRACKING = "local_outputs/registry/mlflow.db"  # kfpkit run's default pipeline root


def _labels(items: list[str]) -> dict[str, str]:
    labels = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--label expects key=value, got {item!r}")
        labels[key] = value
    return labels


def _caching(args: argparse.Namespace) -> bool | None:
    return {"on": True, "off": False}.get(args.caching)


def _kubeflow_target(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from kfpkit.submit.kubeflow import Kubeflow

    return Kubeflow(host=args.host, namespace=args.namespace, kube_context=args.kube_context)


def _vertex_target(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from kfpkit.submit.vertex import Vertex

    return Vertex(
        project=args.project or os.environ.get("GOOGLE_CLOUD_PROJECT", ""),
        location=args.location,
        api_endpoint=args.api_endpoint,
    )


def _submit(args: argparse.Namespace, *, run: bool, cron: str) -> int:
    from kfpkit.submit import pipeline_spec

    params = pipeline_spec.read_params_file(args.params) if args.params else None
    if args.target == "kubeflow":
        from kfpkit.submit import kubeflow

        if args.labels or args.network:
            raise ValueError("--label and --network are Vertex AI options")
        result: Any = kubeflow.submit(
            args.compiled,
            _kubeflow_target(args),
            params=params,
            cli_params=args.param,
            experiment=args.experiment or KFP_DEFAULT_EXPERIMENT,
            run_name=args.name,
            pipeline_root=args.pipeline_root,
            service_account=args.service_account,
            enable_caching=_caching(args),
            cron=cron,
            max_concurrency=args.max_concurrency,
            catchup=args.catchup,
            run=run,
            timeout=args.timeout,
        )
        print(f"pipeline {result.pipeline_id}, version {result.version_name} ({result.version_id})")
        if result.run_id:
            print(f"run {result.run_id} in experiment {args.experiment or KFP_DEFAULT_EXPERIMENT}")
        if result.recurring_run_id:
            print(f"recurring run {result.recurring_run_id}: cron {result.cron!r} (UTC)")
        return 0
    from kfpkit.submit import vertex

    result = vertex.submit(
        args.compiled,
        _vertex_target(args),
        pipeline_root=args.pipeline_root,
        params=params,
        cli_params=args.param,
        display_name=args.name,
        enable_caching=_caching(args),
        labels=_labels(args.labels),
        service_account=args.service_account,
        network=args.network,
        cron=cron,
        max_concurrent_run_count=args.max_concurrency,
        max_run_count=args.max_runs or None,
        run=run,
        timeout=args.timeout,
        experiment=args.experiment,
    )
    if result.job_name:
        print(f"pipeline job {result.job_name} in experiment {result.experiment}")
    if result.schedule_name:
        print(f"schedule {result.schedule_name}: cron {result.cron!r}")
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    return _submit(args, run=True, cron="")


def cmd_schedule(args: argparse.Namespace) -> int:
    return _submit(args, run=args.run_now, cron=args.cron)


def cmd_runs(args: argparse.Namespace) -> int:
    if args.target not in ("kubeflow", "vertex"):
        raise ValueError(
            "kfpkit runs lists a cluster's runs: give --target kubeflow or vertex "
            "(local runs: `kfpkit runs compare RUN_ID...`, or `mlflow ui`)"
        )
    if args.target == "kubeflow":
        from kfpkit.submit import kubeflow

        runs = kubeflow.list_runs(_kubeflow_target(args),
                                  args.experiment or KFP_DEFAULT_EXPERIMENT, args.limit,
                                  timeout=args.timeout)  # fmt: skip
    else:
        from kfpkit.submit import vertex

        runs = vertex.list_runs(_vertex_target(args), args.limit, timeout=args.timeout)
    for run in runs:
        print(f"{run['state']:<24} {run['created']:<26} {run['name']}  {run['id']}")
    if not runs:
        print("no runs")
    return 0


def cmd_runs_compare(args: argparse.Namespace) -> int:
    from kfpkit.tracking import format_comparison, open_tracker

    target = args.target or "local"
    if target == "local":
        tracker = open_tracker("mlflow", tracking_uri=args.tracking_uri)
    elif target == "kubeflow":
        tracker = open_tracker("kubeflow", target=_kubeflow_target(args), timeout=args.timeout)
    else:
        tracker = open_tracker("vertex", target=_vertex_target(args), timeout=args.timeout)
    print(format_comparison([tracker.get(run) for run in args.run_ids]))
    return 0


def _target_options(p: argparse.ArgumentParser, required: bool = True,
                    local: bool = False) -> None:  # fmt: skip
    from kfpkit.submit import DEFAULT_TIMEOUT

    targets = ("local", "kubeflow", "vertex") if local else ("kubeflow", "vertex")
    p.add_argument("--target", choices=targets, required=required)
    p.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"total deadline for the service's answers (default {DEFAULT_TIMEOUT:g})",
    )
    k = p.add_argument_group("Kubeflow Pipelines (token: $KF_PIPELINES_TOKEN)")
    k.add_argument(
        "--host",
        default="",
        help="default $KF_PIPELINES_ENDPOINT; none: in-cluster "
        "or the kubeconfig's API server proxy",
    )
    k.add_argument("--namespace", default="", help="multi-user deployments: profile namespace")
    k.add_argument("--kube-context", default="")
    p.add_argument("--experiment", default="", help="kubeflow: the KFP experiment (default "
                   f"{KFP_DEFAULT_EXPERIMENT}); vertex: the Vertex AI Experiment the job is a "
                   "run of (default: the pipeline's name)")  # fmt: skip
    v = p.add_argument_group("Vertex AI (Application Default Credentials)")
    v.add_argument("--project", default="", help="default $GOOGLE_CLOUD_PROJECT")
    v.add_argument("--location", default="us-central1")
    v.add_argument("--api-endpoint", default="")


def _submit_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("compiled", metavar="COMPILED.yaml")
    _target_options(p)
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a parameter (JSON for numbers, booleans, lists, dicts); over --params",
    )
    p.add_argument("--params", default="", metavar="FILE", help="YAML or JSON name: value file")
    p.add_argument("--name", default="", help="run / job display name")
    p.add_argument("--pipeline-root", default="", help="required (gs://...) for Vertex AI")
    p.add_argument("--service-account", default="")
    p.add_argument("--caching", choices=("compiled", "on", "off"), default="compiled")
    p.add_argument(
        "--label",
        dest="labels",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Vertex AI only",
    )
    p.add_argument("--network", default="", help="Vertex AI only: projects/N/global/networks/X")


def add_commands(sub: Any) -> None:
    """Adds submit, schedule and runs to kfpkit's subcommands."""
    p = sub.add_parser("submit", help="submit a compiled pipeline to Kubeflow or Vertex AI")
    _submit_options(p)
    p.set_defaults(func=cmd_submit, max_concurrency=1, catchup=False, max_runs=0)

    p = sub.add_parser(
        "schedule",
        help="schedule a compiled pipeline on Kubeflow or Vertex AI",
        description="CRON is standard 5-field cron, optionally prefixed TZ=Area/City; "
        "Kubeflow gets it as 6 fields (seconds first) and refuses a zone other than UTC.",
    )
    _submit_options(p)
    p.add_argument("--cron", required=True, metavar="CRON")
    p.add_argument("--max-concurrency", type=int, default=1)
    p.add_argument("--catchup", action="store_true", help="Kubeflow: backfill missed runs")
    p.add_argument("--max-runs", type=int, default=0, help="Vertex AI: stop after N runs")
    p.add_argument("--run-now", action="store_true", help="also start one run now")
    p.set_defaults(func=cmd_schedule)

    p = sub.add_parser(
        "runs",
        help="list a target's runs with their state; compare runs side by side",
        description="kfpkit runs --target kubeflow|vertex lists the newest runs; kfpkit runs "
        "compare RUN_ID... prints the parameters and metrics of runs side by side.",
    )
    _target_options(p, required=False, local=True)
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--tracking-uri", default=LOCAL_TRACKING, metavar="DB",
                   help="local runs: the MLflow store `kfpkit run` records them in "
                   f"(default {LOCAL_TRACKING})")  # fmt: skip
    p.set_defaults(func=cmd_runs)
    runs_sub = p.add_subparsers(dest="runs_command", metavar="compare")
    c = runs_sub.add_parser(
        "compare",
        help="parameters and metrics of several runs side by side",
        description="Prints the parameters and metrics of the runs side by side; a parameter "
        "or metric a run does not have (e.g. a run of another pipeline) shows as (absent). "
        "RUN_ID: local: an MLflow run id or a run's name (its folder under the pipeline root); "
        "kubeflow: a KFP run id; vertex: a pipeline job's id or resource name.",
    )
    c.add_argument("run_ids", nargs="+", metavar="RUN_ID")
    _target_options(c, required=False, local=True)
    c.add_argument("--tracking-uri", metavar="DB")
    for action in c._actions:  # options given before `compare` are kept, not reset
        if action.option_strings and action.dest != "help":
            action.default = argparse.SUPPRESS
    c.set_defaults(func=cmd_runs_compare)
