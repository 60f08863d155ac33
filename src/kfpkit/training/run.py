"""Trains this process's share of a model: alone (Keras' ``fit``, :mod:`.trainer`) or as one
worker of ``$TF_CONFIG``'s cluster (a custom loop, :mod:`.distributed`).

The choice lives here, above both, so that imports go one way: ``distributed`` builds on the
trainer's parts, and nothing in ``trainer`` knows about ``distributed``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from kfpkit.training import distributed, trainer
from kfpkit.training import strategy as strategies


def train(request: trainer.TrainRequest, callbacks: Sequence[Any] = ()) -> trainer.TrainResult:
    """Trains and exports as :func:`.trainer.train` does, on every worker when ``$TF_CONFIG``
    names more than one (each waits up to ``request.worker_timeout`` for the others)."""
    if strategies.workers_in(os.environ.get("TF_CONFIG"))[0] > 1:
        # model.fit cannot train multi-worker on Keras 3 (keras-team/keras#20585): own loop
        return distributed.train(request, callbacks, request.worker_timeout)
    return trainer.train(request, callbacks)
