"""One worker of a multi-worker train job (a Vertex AI CustomJob replica, a TrainJob node).

Run by the job the train step started (:mod:`kfpkit.components.train.multiworker`) as
``python3 -m kfpkit.components.train.worker --executor_input JSON``. ``TF_CONFIG`` comes from
the service (Vertex AI sets it) or is built from the TrainJob's pod names
(:func:`kfpkit.training.cluster_jobs.tf_config_for_trainjob`). The chief runs the launcher
(it records the outputs); the other workers train and write nothing, and on failure never
clear the outputs (the chief's). Exit codes: 0, 2 for bad input, 1 otherwise.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from kfpkit.runtime.executor import EXIT_SYSTEM_ERROR, EXIT_USER_ERROR, Executor, launch
from kfpkit.training import cluster_jobs, distributed

_log = logging.getLogger("kfpkit")


def main(argv: list[str] | None = None) -> int:
    if not os.environ.get("TF_CONFIG"):
        config = cluster_jobs.tf_config_for_trainjob(os.environ)
        if config is None:
            _log.error("no TF_CONFIG and no %s: not a worker of a job", cluster_jobs.TRAINJOB_ENV)
            return EXIT_USER_ERROR
        os.environ["TF_CONFIG"] = config
    # TensorFlow: after TF_CONFIG is set
    from kfpkit.components.train import launcher
    from kfpkit.training import run as training

    if distributed.cluster_from(os.environ["TF_CONFIG"]).is_chief:
        return launch(launcher.run, argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser()
    parser.add_argument("--executor_input", required=True)
    args, _ = parser.parse_known_args(argv)
    try:
        request = launcher.request_from(Executor.from_json(args.executor_input))
        training.train(request)
        return 0
    except ValueError as e:
        _log.error("Invalid input: %s", e)
        return EXIT_USER_ERROR
    except Exception as e:  # noqa: BLE001 - every other failure is a system error
        _log.exception("Worker failed: %s", e)
        return EXIT_SYSTEM_ERROR


if __name__ == "__main__":
    code = main()
    if code == 0:
        sys.exit(0)  # an orderly exit: the chief's coordination service sees this worker leave
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # without waiting on TensorFlow's threads (a collective may still hang)
