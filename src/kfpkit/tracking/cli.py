"""``kfpkit models lineage NAME[:VERSION]`` (added to kfpkit.cli's parser)."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

LOCAL_REGISTRY = "local_outputs/registry/mlflow.db"  # kfpkit run's default pipeline root


def cmd_lineage(args: argparse.Namespace) -> int:
    from kfpkit.registry import open_registry
    from kfpkit.tracking.lineage import find_version, format_lineage, lineage, parse_reference

    name, version = parse_reference(args.model)
    if (
        args.backend == "mlflow"
        and "://" not in args.registry_uri
        and not os.path.isfile(args.registry_uri)
    ):
        raise ValueError(
            f"no registry at {args.registry_uri!r} (--registry-uri: the MLflow store a local "
            "run registers in, <pipeline root>/registry/mlflow.db)"
        )
    registry = open_registry(args.backend, registry_uri=args.registry_uri,
                             project=args.project or os.environ.get("GOOGLE_CLOUD_PROJECT", ""),
                             location=args.location, api_endpoint=args.api_endpoint,
                             server_address=args.server_address)  # fmt: skip
    tracker = None
    if args.backend == "mlflow":  # runs are tracked in the registry's own store
        from kfpkit.tracking import open_tracker

        tracker = open_tracker("mlflow", tracking_uri=args.registry_uri)
    doc = lineage(find_version(registry, name, version), tracker)
    print(json.dumps(doc, indent=1, sort_keys=True) if args.json else format_lineage(doc))
    return 0


def add_commands(sub: Any) -> None:
    """Adds ``models`` (``models lineage``) to kfpkit's subcommands."""
    p = sub.add_parser("models", help="registered models")
    models_sub = p.add_subparsers(dest="models_command", required=True)
    p = models_sub.add_parser(
        "lineage",
        help="which run, data window, statistics, hyperparameters and evaluation produced a "
        "registered model",
        description="NAME[:VERSION]; without a version the champion (else the newest). Read "
        "from the registry's record of the version (and, with MLflow, the run tracked in the "
        "same store).",
    )
    p.add_argument("model", metavar="NAME[:VERSION]")
    p.add_argument("--backend", choices=("mlflow", "vertex", "kubeflow"), default="mlflow")
    p.add_argument("--registry-uri", default=LOCAL_REGISTRY,
                   help=f"mlflow: the store (default {LOCAL_REGISTRY})")  # fmt: skip
    p.add_argument("--project", default="", help="vertex: default $GOOGLE_CLOUD_PROJECT")
    p.add_argument("--location", default="us-central1", help="vertex")
    p.add_argument("--api-endpoint", default="", help="vertex")
    p.add_argument("--server-address", default="", help="kubeflow: the Model Registry's REST")
    p.add_argument("--json", action="store_true", help="the whole record as JSON")
    p.set_defaults(func=cmd_lineage)
