"""The ``kserve.Model`` that serves a train-component SavedModel, V1 and V2.

Requests are validated against the SavedModel's own ``serving_default`` signature (see
``requests``); a bad one is KServe's ``InvalidInput`` (400). Valid requests go to a
:class:`Batcher`: one thread runs the model on every request queued while its previous call
ran, concatenated (no waiting window, so an idle server adds no delay; under concurrent load,
many small requests become one TensorFlow call). The event loop never blocks on TensorFlow.
After answering, the request is handed to the request log and the shadow candidate, both
of which work on their own threads.

Several variants of the model (``--variant``) each have their own SavedModel and batcher; the
experiment (``kfpkit.serving.experiment``) picks one a request (a request goes whole to one
variant), remembers the answer for feedback, and every answer names its variant and request
id: V1 ``{"predictions": [...], "variant": ..., "request_id": ...}``, V2 in the response's
``parameters``, and both in the ``X-Variant`` / ``X-Request-Id`` headers. Clients send the
union of the variants' features (each variant reads its own).
"""

from __future__ import annotations

import asyncio
import json
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
from kfpkit.serving.domain import DomainCheck, load_domains
from kfpkit.serving.experiment import Experiment, ExperimentOptions
from kfpkit.serving.explaining import MAX_ROWS as EXPLAIN_MAX_ROWS
from kfpkit.serving.explaining import Explainer, ExplainOptions
from kfpkit.serving.limits import DEFAULT_MAX_ROWS
from kfpkit.serving.loading import load_serving_model
from kfpkit.serving.request_log import LoggedRequest, RequestLog
from kfpkit.serving.routing import VariantSpec
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


class Variant:
    """One loaded variant: its SavedModel, version and batcher."""

    def __init__(self, name: str, serving: ServingModel):
        self.name, self.serving = name, serving
        self.version = model_version(serving.path)
        # the first call traces the graph (tens of ms): pay it here, not in a client's request
        serving.predict(
            {s.name: np.array([""], dtype=object) if s.kind == CATEGORICAL else
             np.zeros(1, dtype=np.float32) for s in serving.feature_specs}
        )  # fmt: skip
        self.batcher = Batcher(serving.predict)


def load_variant(spec: VariantSpec) -> Variant:
    """ValueError naming the variant, its folder and the fault when it does not load."""
    return Variant(spec.name, load_serving_model(spec.model_dir, f"variant {spec.name!r}"))


def union_specs(variants: list[Variant]) -> list[FeatureSpec]:
    """The features a client sends: every variant's, in order; ValueError if two variants
    read one feature as different kinds."""
    specs: dict[str, FeatureSpec] = {}
    for variant in variants:
        for spec in variant.serving.feature_specs:
            seen = specs.setdefault(spec.name, spec)
            if seen.kind != spec.kind:
                raise ValueError(f"variant {variant.name!r} reads feature {spec.name!r} as "
                                 f"{spec.kind}, another variant as {seen.kind}")  # fmt: skip
    return list(specs.values())


class TabularModel(kserve.Model):
    """Serves the highest version of a SavedModel folder under ``name``, or several variants
    (``experiment.variants``; then ``model_dir`` is unused)."""

    def __init__(
        self,
        name: str,
        model_dir: str,
        max_rows: int = DEFAULT_MAX_ROWS,
        log_dir: str | None = None,
        log_batch_rows: int = 10_000,
        log_flush_seconds: float = 5.0,
        experiment: ExperimentOptions | None = None,
        explain: ExplainOptions | None = None,
    ):
        super().__init__(name, return_response_headers=True)
        self.explain_options = explain or ExplainOptions()
        self.explainer: Explainer | None = None
        self.model_dir = model_dir
        self.options = experiment or ExperimentOptions()
        self.variants: dict[str, Variant] = {}
        self.experiment: Experiment | None = None
        self.max_rows = max_rows
        self._log_settings = (log_dir, log_batch_rows, log_flush_seconds)
        self.serving: ServingModel | None = None
        self.specs: list[FeatureSpec] = []
        self.version = ""
        self.request_log: RequestLog | None = None
        self.shadow: Shadow | None = None
        self.batcher: Batcher | None = None

    def load(self) -> bool:
        options = self.options
        options.check()  # bad weights or flags: refused before any model is loaded
        if options.variants:
            variants = [load_variant(spec) for spec in options.variants]
            weights = [spec.weight for spec in options.variants]
        else:  # one model: one variant, named after its version
            serving = load_serving_model(self.model_dir, "model")
            variants = [Variant(model_version(serving.path), serving)]
            weights = [1.0]
        self.variants = {v.name: v for v in variants}
        self.serving = variants[0].serving
        self.specs = union_specs(variants)
        self.version = variants[0].version
        self.batcher = variants[0].batcher
        self.explainer = Explainer(self.serving, self.explain_options)
        log_dir, batch_rows, flush_seconds = self._log_settings
        self.experiment = Experiment(
            self.name, list(self.variants), weights, options, log_dir, batch_rows,
            flush_seconds, [s.name for s in self.specs],
        )  # fmt: skip
        domains = DomainCheck(load_domains(options.schema), [s.name for s in self.specs]) \
            if options.schema else None  # fmt: skip
        if log_dir:
            self.request_log = RequestLog(
                log_dir, self.name, self.version, self.specs, batch_rows, flush_seconds,
                domains, after_write=self.experiment.save_policy,
            )  # fmt: skip
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
        """Answers what is queued, then flushes the shadow comparison, the request log, the
        feedback log and the policy state, in that order."""
        for variant in self.variants.values():
            variant.batcher.close()
        if self.shadow is not None:
            self.shadow.close()
        if self.request_log is not None:
            self.request_log.close()
        if self.experiment is not None:
            self.experiment.close()
        self.ready = False

    def status(self) -> dict[str, Any]:
        log = self.request_log
        return {
            "model_name": self.name,
            "model_version": self.version,
            "model_path": self.serving.path if self.serving else None,
            "features": [{"name": s.name, "kind": s.kind} for s in self.specs],
            "model_calls": sum(v.batcher.calls for v in self.variants.values()),
            "variants": {v.name: {"model_version": v.version, "model_path": v.serving.path,
                                  "model_calls": v.batcher.calls}
                         for v in self.variants.values()},  # fmt: skip
            "request_log": None if log is None else {
                "directory": log.directory,
                "rows_written": log.rows_written,
                "files_written": log.files_written,
                "errors": log.errors,
            },
            "shadow": None if self.shadow is None else self.shadow.report(),
            **(self.experiment.status() if self.experiment else {}),
        }  # fmt: skip

    def decode(
        self, payload: Any, headers: dict[str, str] | None = None
    ) -> tuple[requests.Decoded, str]:
        try:
            if isinstance(payload, InferRequest):
                inputs = [_json_input(i) for i in payload.inputs]
                return requests.decode_v2(inputs, self.specs, self.max_rows), "v2"
            if isinstance(payload, (bytes, bytearray)):  # KServe parses exact JSON types only
                payload = _json_body(payload, (headers or {}).get("content-type", ""))
            return requests.decode_v1(payload, self.specs, self.max_rows), "v1"
        except requests.BadRequest as e:
            raise RefusedRequest(str(e)) from None

    async def predict(
        self, payload: Any, headers: dict[str, str] | None = None, response_headers: Any = None
    ) -> Any:
        received, started = time.time(), time.perf_counter()
        experiment = self.experiment
        assert experiment is not None, "predict before load"
        if isinstance(payload, (bytes, bytearray)):  # KServe parses exact JSON types only
            payload = _json_body(payload, (headers or {}).get("content-type", ""))
        try:
            unit, payload = experiment.unit_of(payload, headers)
            decoded, protocol = self.decode(payload, headers)
            variant = self.variants[experiment.choose(unit)]
        except requests.BadRequest as e:
            raise RefusedRequest(str(e)) from None
        request_id = (headers or {}).get("x-request-id") or ""
        if request_id in experiment.index:  # it joins feedback: one request an id
            raise RefusedRequest(f"request id {request_id!r} (X-Request-Id) was already used; "
                                 "send a new id for each request", 409)  # fmt: skip
        probabilities = await variant.batcher.predict(decoded.features, decoded.rows)
        if not request_id:
            v2_id = payload.id if protocol == "v2" else None
            request_id = v2_id if v2_id and v2_id not in experiment.index else uuid.uuid4().hex
        latency_ms = (time.perf_counter() - started) * 1000
        experiment.served(request_id, variant.name, probabilities, received)
        if self.request_log is not None:
            self.request_log.record(
                LoggedRequest(decoded.features, probabilities, protocol, request_id, received,
                              variant.name, variant.version, latency_ms)
            )  # fmt: skip
        if self.shadow is not None:
            self.shadow.mirror(decoded.features, probabilities, (protocol, request_id, received))
        if response_headers is not None:
            response_headers["X-Request-Id"] = request_id
            response_headers["X-Variant"] = variant.name
        values = probabilities.tolist()
        if protocol == "v1":
            return {"predictions": values, "variant": variant.name, "request_id": request_id}
        output = InferOutput(
            name=variant.serving.output_name, shape=[decoded.rows], datatype="FP32", data=values
        )
        return InferResponse(
            response_id=payload.id or request_id,
            model_name=self.name,
            model_version=variant.version,
            infer_outputs=[output],
            parameters={"variant": variant.name, "request_id": request_id},
        )

    async def explain(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        """KServe V1 ``:explain`` (``kfpkit.serving.explaining``): per-feature attributions
        of each row on the primary model; a request with missing features is a 400 naming
        them. Computed on a worker thread: the event loop keeps answering predictions."""
        explainer = self.explainer
        assert explainer is not None, "explain before load"
        if isinstance(payload, (bytes, bytearray)):
            payload = _json_body(payload, (headers or {}).get("content-type", ""))
        if isinstance(payload, InferRequest):
            raise RefusedRequest('explain takes a V1 body {"instances": [...]}')
        try:
            decoded = requests.decode_v1(payload, explainer.serving.feature_specs,
                                         min(self.max_rows, EXPLAIN_MAX_ROWS))  # fmt: skip
        except requests.BadRequest as e:
            raise RefusedRequest(str(e)) from None
        if explainer.unavailable:
            raise RefusedRequest(explainer.unavailable)
        received, started = time.time(), time.perf_counter()
        found = await asyncio.to_thread(explainer.explain, decoded.features)
        request_id = (headers or {}).get("x-request-id") or uuid.uuid4().hex
        if self.request_log is not None:  # served rows too, with their attributions
            rows = [json.dumps(row) for row in found.rows()]
            self.request_log.record(
                LoggedRequest(decoded.features, found.predictions, "v1", request_id, received,
                              next(iter(self.variants)), self.version,
                              (time.perf_counter() - started) * 1000, attributions=rows)
            )  # fmt: skip
        return {**explainer.answer(found), "model_version": self.version,
                "variant": next(iter(self.variants)), "request_id": request_id}  # fmt: skip


class RefusedRequest(InvalidInput):
    """A request answered with a 4xx ``status`` and its message; the server registers a
    handler that logs nothing for it (KServe's logs a traceback per bad request)."""

    def __init__(self, reason: str, status: int = 400):
        super().__init__(reason)
        self.status = status


def is_json(content_type: str) -> bool:
    """``application/json`` or ``*+json``, with or without parameters (``; charset=utf-8``)."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def not_json(content_type: str) -> str:
    return f"Content-Type {content_type!r} is not JSON: send the body as application/json"


def _json_body(body: bytes | bytearray, content_type: str) -> Any:
    """A V1 body KServe left as bytes: JSON under a JSON media type with parameters
    (``application/json; charset=utf-8``), else 415 naming the Content-Type."""
    if not is_json(content_type):
        raise RefusedRequest(not_json(content_type), 415)
    try:
        return json.loads(body)
    except ValueError as e:
        raise RefusedRequest(f"the body is not valid JSON: {e}") from None


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
