"""Kubeflow Pipelines runs over its v2beta1 REST API with plain HTTP (no kfp).

For code that runs inside a pipeline step, whose images hold no kfp: a run is created from
the compiled pipeline spec inline (``pipeline_spec``; nothing is uploaded), found again by
its display name, and read back by id. Who and where come from
:class:`kfpkit.submit.kubeflow.Kubeflow` (host, token, the pod's KFP service-account token),
so a step and ``kfpkit submit`` authenticate the same way.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

import yaml

from kfpkit.runtime.retry import is_connection_error, retry
from kfpkit.submit.kubeflow import Kubeflow
from kfpkit.submit.pipeline_spec import CompiledPipeline

API = "/apis/v2beta1"
# The KFP API server inside the cluster (the default installation's service), for steps.
IN_CLUSTER_HOST = "http://ml-pipeline.kubeflow.svc.cluster.local:8888"
_TRANSIENT_STATUS = {429, 500, 502, 503, 504}


class HTTPStatusError(RuntimeError):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _is_transient(error: BaseException) -> bool:
    if isinstance(error, HTTPStatusError):
        return error.status in _TRANSIENT_STATUS
    return is_connection_error(error)


@dataclass(frozen=True)
class Run:
    run_id: str
    display_name: str
    state: str
    created: bool  # False: an existing run of that name was found


class KubeflowRest:
    """A few v2beta1 calls, each retried on throttling, 5xx and dropped connections."""

    def __init__(self, target: Kubeflow, timeout: float = 30.0, attempts: int = 5):
        host = target.resolved_host() or IN_CLUSTER_HOST
        self.host = host if "://" in host else f"https://{host}"
        self.token = target.resolved_token()
        self.namespace = target.namespace
        self.timeout, self.attempts = timeout, attempts

    def _call(self, method: str, path: str, query: dict[str, str] | None = None,
              body: Any = None) -> Any:  # fmt: skip
        url = f"{self.host}{API}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode()

        def once() -> Any:
            request = urllib.request.Request(url, data=data, method=method)
            request.add_header("Accept", "application/json")
            if data is not None:
                request.add_header("Content-Type", "application/json")
            if self.token:
                request.add_header("Authorization", f"Bearer {self.token}")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read() or b"{}")
            except urllib.error.HTTPError as e:
                detail = e.read()[:500].decode(errors="replace")
                hint = " (check the token)" if e.code in (401, 403) else ""
                raise HTTPStatusError(
                    e.code, f"Kubeflow Pipelines {method} {url}: HTTP {e.code} {detail}{hint}"
                ) from None

        try:
            return retry(once, _is_transient, attempts=self.attempts, what=f"KFP {method} {path}")
        except urllib.error.URLError as e:
            raise RuntimeError(f"cannot reach Kubeflow Pipelines at {self.host}: {e}") from None

    def _namespaced(self, query: dict[str, str]) -> dict[str, str]:
        return {**query, "namespace": self.namespace} if self.namespace else query

    def experiment_id(self, name: str) -> str:
        """The id of the experiment ``name``, created when missing."""
        found = self._call("GET", "/experiments", self._namespaced({"filter": _by_name(name)}))
        for experiment in found.get("experiments") or []:
            if experiment.get("display_name") == name:
                return str(experiment["experiment_id"])
        body = {"display_name": name}
        if self.namespace:
            body["namespace"] = self.namespace
        return str(self._call("POST", "/experiments", body=body)["experiment_id"])

    def get(self, kind: str, *ids: str) -> dict[str, Any] | None:
        """``GET /<kind>/<id>[/versions/<id>]`` (runs, experiments, pipelines); None for 404."""
        path = f"/{kind}/" + "/versions/".join(urllib.parse.quote(i, safe="") for i in ids)
        try:
            return dict(self._call("GET", path))
        except HTTPStatusError as e:
            if e.status == 404:
                return None
            raise

    def find_run(self, display_name: str, experiment_id: str = "") -> dict[str, Any] | None:
        query = {"filter": _by_name(display_name), "page_size": "100"}
        if experiment_id:
            query["experiment_id"] = experiment_id
        found = self._call("GET", "/runs", self._namespaced(query))
        # the name is compared here too: a server that ignores the filter lists every run
        for run in found.get("runs") or []:
            if run.get("display_name") == display_name:
                return dict(run)
        return None

    def start_run(
        self,
        pipeline: CompiledPipeline,
        display_name: str,
        parameters: dict[str, Any],
        *,
        experiment: str = "",
        pipeline_root: str = "",
        service_account: str = "",
        description: str = "",
    ) -> Run:
        """The run named ``display_name``: found when it exists (a restarted step), else
        created from the pipeline's spec inline with ``parameters`` (checked by the caller)."""
        experiment_id = self.experiment_id(experiment) if experiment else ""
        existing = self.find_run(display_name, experiment_id)
        if existing is not None:
            return Run(str(existing["run_id"]), display_name, str(existing.get("state", "")),
                       created=False)  # fmt: skip
        runtime_config: dict[str, Any] = {"parameters": parameters}
        if pipeline_root:
            runtime_config["pipeline_root"] = pipeline_root
        body: dict[str, Any] = {
            "display_name": display_name,
            "pipeline_spec": inline_spec(pipeline),
            "runtime_config": runtime_config,
        }
        if description:
            body["description"] = description
        if experiment_id:
            body["experiment_id"] = experiment_id
        if service_account:
            body["service_account"] = service_account
        run = self._call("POST", "/runs", body=body)
        return Run(str(run["run_id"]), display_name, str(run.get("state", "")), created=True)


def inline_spec(pipeline: CompiledPipeline) -> dict[str, Any]:
    """The ``pipeline_spec`` field of a v2beta1 run: the PipelineSpec, or, when the file
    carries a platform spec (kfp-kubernetes settings) as a second document, both under
    ``pipeline_spec`` / ``platform_spec`` as the API server reads them."""
    docs = [d for d in yaml.safe_load_all(pipeline.path.read_text()) if d]
    if len(docs) == 1:
        return dict(docs[0])
    return {"pipeline_spec": docs[0], "platform_spec": docs[1]}


def _by_name(name: str) -> str:
    return json.dumps(
        {"predicates": [{"operation": "EQUALS", "key": "display_name", "stringValue": name}]}
    )
