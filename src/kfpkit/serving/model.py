"""The ``kserve.Model`` that serves a train-component SavedModel, V1 and V2.

Requests are validated against the SavedModel's own ``serving_default`` signature (see
``requests``); a bad one is KServe's ``InvalidInput`` (400). Valid requests go to a
:class:`Batcher`: one thread runs the model on every request queued while its previous call
ran, concatenated (no waiting window, so an idle server adds no delay; under concurrent load,
many small requests become one TensorFlow call). The event loop never blocks on TensorFlow.
After answering, the request is handed to the request log and the shadow candidate, both
of which work on their own threads.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

import kserve
import numpy as np
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from kfpkit.serving import requests
from kfpkit.serving.limits import DEFAULT_MAX_ROWS
from kfpkit.serving.request_log import LoggedRequest, RequestLog
from kfpkit.serving.shadow import Shadow
from kfpkit.tabular import CATEGORICAL, FeatureSpec, ServingModel

# Rows of one model call when many requests queue up (bounded memory, still one big call).
BATCH_ROWS = 8192

Features = dict[str, np.ndarray]
# one queued request: its features, rows, the future its handler awaits, and that loop
Pending = tuple[Features, int, asyncio.Future, asyncio.AbstractEventLoop]


class Batcher:
    """Runs ``predict`` on one thread over every request queued since its last call."""

    def __init__(self, predict: Callable[[Features], np.ndarray], max_rows: int = BATCH_ROWS):
        self._predict = predict
        self._max_rows = max_rows
        self._pending: deque[Pending] = deque()
        self._wakeup = threading.Condition()
        self._closed = False
        self.calls = 0
        self._thread = threading.Thread(target=self._run, name="kfpkit-batcher", daemon=True)
        self._thread.start()

    async def predict(self, features: Features, rows: int) -> np.ndarray:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._wakeup:
            if self._closed:
                raise RuntimeError("the model is stopping")
            self._pending.append((features, rows, future, loop))
            self._wakeup.notify()
        return await future

    def close(self) -> None:
        with self._wakeup:
            self._closed = True
            self._wakeup.notify()
        self._thread.join(30)

    def _take(self) -> list[Pending]:
        with self._wakeup:
            while not self._pending and not self._closed:
                self._wakeup.wait()
            taken: list[Pending] = []
            rows = 0
            while self._pending and (not taken or rows + self._pending[0][1] <= self._max_rows):
                item = self._pending.popleft()
                taken.append(item)
                rows += item[1]
            return taken

    def _run(self) -> None:
        while True:
            taken = self._take()
            if not taken:
                return  # closed and nothing left
            try:
                if len(taken) == 1:
                    out = self._predict(taken[0][0])
                else:
                    names = taken[0][0].keys()
                    out = self._predict(
                        {n: np.concatenate([t[0][n] for t in taken]) for n in names}
                    )
                self.calls += 1
                start = 0
                for _, rows, future, loop in taken:
                    loop.call_soon_threadsafe(_resolve, future, out[start : start + rows], None)
                    start += rows
            except Exception as e:  # noqa: BLE001 - handed to every waiting request
                for _, _, future, loop in taken:
                    loop.call_soon_threadsafe(_resolve, future, None, e)


def _resolve(future: asyncio.Future, value: Any, error: BaseException | None) -> None:
    if future.done():  # the client went away
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


def model_version(path: str) -> str:
    """The served version: the name of the SavedModel's version folder."""
    return os.path.basename(os.path.normpath(path))


class TabularModel(kserve.Model):
    """Serves the highest version of a SavedModel folder under ``name``."""

    def __init__(
        self,
        name: str,
        model_dir: str,
        max_rows: int = DEFAULT_MAX_ROWS,
        log_dir: str | None = None,
        log_batch_rows: int = 10_000,
        log_flush_seconds: float = 5.0,
    ):
        super().__init__(name)
        self.model_dir = model_dir
        self.max_rows = max_rows
        self._log_settings = (log_dir, log_batch_rows, log_flush_seconds)
        self.serving: ServingModel | None = None
        self.specs: list[FeatureSpec] = []
        self.version = ""
        self.request_log: RequestLog | None = None
        self.shadow: Shadow | None = None
        self.batcher: Batcher | None = None

    def load(self) -> bool:
        self.serving = ServingModel(self.model_dir, self.name)
        self.specs = list(self.serving.feature_specs)
        self.version = model_version(self.serving.path)
        # the first call traces the graph (tens of ms): pay it here, not in a client's request
        self.serving.predict(
            {s.name: np.array([""], dtype=object) if s.kind == CATEGORICAL else
             np.zeros(1, dtype=np.float32) for s in self.specs}
        )  # fmt: skip
        self.batcher = Batcher(self.serving.predict)
        log_dir, batch_rows, flush_seconds = self._log_settings
        if log_dir:
            self.request_log = RequestLog(
                log_dir, self.name, self.version, self.specs, batch_rows, flush_seconds
            )
        self.ready = True
        return self.ready

    def get_input_types(self) -> list[dict[str, Any]]:
        """What ``GET /v2/models/<name>`` lists: one input per feature, one value a row."""
        return [
            {"name": s.name, "datatype": "BYTES" if s.kind == CATEGORICAL else "FP32",
             "shape": [-1]}
            for s in self.specs
        ]  # fmt: skip

    def get_output_types(self) -> list[dict[str, Any]]:
        name = self.serving.output_name if self.serving else ""
        return [{"name": name, "datatype": "FP32", "shape": [-1]}]

    def attach_shadow(self, shadow: Shadow) -> None:
        self.shadow = shadow

    def stop(self) -> None:
        """Answers what is queued, then flushes the shadow comparison and the request log."""
        if self.batcher is not None:
            self.batcher.close()
        if self.shadow is not None:
            self.shadow.close()
        if self.request_log is not None:
            self.request_log.close()
        self.ready = False

    def status(self) -> dict[str, Any]:
        log = self.request_log
        return {
            "model_name": self.name,
            "model_version": self.version,
            "model_path": self.serving.path if self.serving else None,
            "features": [{"name": s.name, "kind": s.kind} for s in self.specs],
            "model_calls": self.batcher.calls if self.batcher else 0,
            "request_log": None if log is None else {
                "directory": log.directory,
                "rows_written": log.rows_written,
                "files_written": log.files_written,
                "errors": log.errors,
            },
            "shadow": None if self.shadow is None else self.shadow.report(),
        }  # fmt: skip

    def decode(self, payload: Any) -> tuple[requests.Decoded, str]:
        try:
            if isinstance(payload, InferRequest):
                inputs = [_json_input(i) for i in payload.inputs]
                return requests.decode_v2(inputs, self.specs, self.max_rows), "v2"
            return requests.decode_v1(payload, self.specs, self.max_rows), "v1"
        except requests.BadRequest as e:
            raise InvalidInput(str(e)) from None

    async def predict(
        self, payload: Any, headers: dict[str, str] | None = None, response_headers: Any = None
    ) -> Any:
        received = time.time()
        decoded, protocol = self.decode(payload)
        assert self.batcher is not None, "predict before load"
        probabilities = await self.batcher.predict(decoded.features, decoded.rows)
        request_id = (headers or {}).get("x-request-id") or (
            payload.id if protocol == "v2" and payload.id else uuid.uuid4().hex
        )
        if self.request_log is not None:
            self.request_log.record(
                LoggedRequest(decoded.features, probabilities, protocol, request_id, received)
            )
        if self.shadow is not None:
            self.shadow.mirror(decoded.features, probabilities, (protocol, request_id, received))
        values = probabilities.tolist()
        if protocol == "v1":
            return {"predictions": values}
        assert self.serving is not None
        output = InferOutput(
            name=self.serving.output_name, shape=[decoded.rows], datatype="FP32", data=values
        )
        return InferResponse(
            response_id=request_id,
            model_name=self.name,
            model_version=self.version,
            infer_outputs=[output],
        )


class _Tensor:
    def __init__(self, name: str, datatype: str, shape: list[int], data: Any):
        self.name, self.datatype, self.shape, self.data = name, datatype, shape, data


def _json_input(tensor: Any) -> requests.V2Input:
    """A V2 input as plain values; binary tensors (V2 binary extension) are decoded first."""
    data = tensor.data
    if data is None:
        try:
            data = tensor.as_numpy().reshape(-1).tolist()
        except Exception as e:  # noqa: BLE001 - kserve raises several types for bad tensors
            raise requests.BadRequest(f"input {tensor.name!r}: cannot decode: {e}") from None
    return _Tensor(tensor.name, tensor.datatype, list(tensor.shape or []), data)
