"""Local stand-ins for the Kubeflow Pipelines and Vertex AI REST APIs, for tests and the
submit notebook: a threaded HTTP server on 127.0.0.1 that records every request the real
SDKs send and answers just enough for them to carry on (ids, names, states).

They check nothing a real service would; tests read ``server.requests`` to check the wire.
"""

from __future__ import annotations

import json
from typing import Any

from kfpkit.testing.http import RecordingServer, Request

__all__ = ["KubeflowTestServer", "Request", "VertexTestServer"]


def _display_name_filter(query: dict[str, str]) -> str | None:
    if "filter" not in query:
        return None
    for predicate in json.loads(query["filter"]).get("predicates", []):
        if predicate.get("key") == "display_name":
            return predicate.get("stringValue") or predicate.get("string_value")
    return None


def _uploaded_spec(request: Request) -> dict:
    """The PipelineSpec of an uploaded pipeline file (the first YAML document)."""
    import yaml

    return next(yaml.safe_load_all(request.multipart_file()))


class KubeflowTestServer(RecordingServer):
    """Kubeflow Pipelines' v2beta1 REST API, the parts kfpkit's submit, schedule and runs use."""

    def __init__(self) -> None:
        self.pipelines: dict[str, dict] = {}
        self.versions: dict[str, dict] = {}
        self.experiments: dict[str, dict] = {}
        self.runs: dict[str, dict] = {}
        self.recurring_runs: dict[str, dict] = {}
        super().__init__()

    def answer(self, request: Request) -> tuple[int, Any]:
        method, path, query = request.method, request.path, request.query
        api = "/apis/v2beta1"
        wanted = _display_name_filter(query)
        parts = path[len(api) + 1 :].split("/")

        def listed(items: dict[str, dict]) -> list[dict]:
            return [i for i in items.values() if wanted is None or i["display_name"] == wanted]

        if (method, path) == ("GET", f"{api}/healthz"):
            return 200, {"multi_user": False}
        if (method, path) == ("GET", f"{api}/pipelines"):
            return 200, {"pipelines": listed(self.pipelines)}
        if (method, path) == ("POST", f"{api}/pipelines/upload"):
            pid = self.new_id("pipeline")
            self.pipelines[pid] = {"pipeline_id": pid, "display_name": query["name"]}
            vid = self.new_id("version")
            self.versions[vid] = {
                "pipeline_id": pid,
                "pipeline_version_id": vid,
                "display_name": query["name"],
                "pipeline_spec": _uploaded_spec(request),
            }
            return 200, self.pipelines[pid]
        if (method, path) == ("POST", f"{api}/pipelines/upload_version"):
            vid = self.new_id("version")
            self.versions[vid] = {
                "pipeline_id": query["pipelineid"],
                "pipeline_version_id": vid,
                "display_name": query["name"],
                "pipeline_spec": _uploaded_spec(request),
            }
            return 200, self.versions[vid]
        if method == "GET" and len(parts) == 4 and parts[0] == "pipelines" and parts[3] in (
            self.versions
        ):
            return 200, self.versions[parts[3]]
        if method == "GET" and path.startswith(f"{api}/pipelines/") and path.endswith("/versions"):
            pid = path.split("/")[-2]
            found = [v for v in listed(self.versions) if v["pipeline_id"] == pid]
            return 200, {"pipeline_versions": found}
        if (method, path) == ("GET", f"{api}/experiments"):
            return 200, {"experiments": listed(self.experiments)}
        if (method, path) == ("POST", f"{api}/experiments"):
            eid = self.new_id("experiment")
            self.experiments[eid] = {**request.json(), "experiment_id": eid}
            return 200, self.experiments[eid]
        if (method, path) == ("POST", f"{api}/runs"):
            rid = self.new_id("run")
            self.runs[rid] = {
                **request.json(),
                "run_id": rid,
                "state": "PENDING",
                "created_at": "2026-12-01T00:00:00Z",
            }
            return 200, self.runs[rid]
        if method == "GET" and parts[0] == "runs" and len(parts) == 2 and parts[1] in self.runs:
            return 200, self.runs[parts[1]]
        if method == "GET" and parts[0] == "experiments" and parts[1:] and (
            parts[1] in self.experiments
        ):
            return 200, self.experiments[parts[1]]
        if (method, path) == ("GET", f"{api}/runs"):
            runs = [
                r
                for r in self.runs.values()
                if "experiment_id" not in query or r["experiment_id"] == query["experiment_id"]
            ]
            return 200, {"runs": runs[::-1], "total_size": len(runs)}
        if (method, path) == ("GET", f"{api}/recurringruns"):
            jobs = [
                j
                for j in listed(self.recurring_runs)
                if "experiment_id" not in query or j["experiment_id"] == query["experiment_id"]
            ]
            return 200, {"recurringRuns": jobs}
        if (method, path) == ("POST", f"{api}/recurringruns"):
            jid = self.new_id("recurring")
            self.recurring_runs[jid] = {**request.json(), "recurring_run_id": jid}
            return 200, self.recurring_runs[jid]
        return super().answer(request)


class VertexTestServer(RecordingServer):
    """Vertex AI's v1 REST API (pipeline jobs, schedules, the Metadata store's contexts that
    Vertex AI Experiments are made of) and, for the SDK's pipeline-root bucket check
    (``STORAGE_EMULATOR_HOST``), Cloud Storage's bucket GET.

    A created job gets a ``jobDetail.pipelineRunContext`` at once (Vertex AI adds it when the
    job starts), so that the SDK can make it a run of an experiment; ``contexts`` holds every
    Metadata context by resource name, with the ``childContexts`` added to it."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict] = {}
        self.schedules: dict[str, dict] = {}
        self.buckets: dict[str, dict] = {}
        self.contexts: dict[str, dict] = {}
        super().__init__()

    def _metadata(self, request: Request, name: str) -> tuple[int, Any]:
        method = request.method
        if name.endswith(":addContextChildren") and method == "POST":
            parent = self.contexts[name[: -len(":addContextChildren")]]
            children = parent.setdefault("childContexts", [])
            children += [c for c in request.json().get("childContexts", []) if c not in children]
            return 200, {}
        if name.endswith("/contexts") and method == "POST":
            context_id = request.query.get("contextId") or self.new_id("context")
            context = {**request.json(), "name": f"{name}/{context_id}"}
            if context["name"] in self.contexts:
                return 409, {"error": {"code": 409, "status": "ALREADY_EXISTS",
                                       "message": f"{context['name']} exists"}}  # fmt: skip
            self.contexts[context["name"]] = context
            return 200, context
        if method == "GET" and name.endswith("/metadataStores/default"):
            return 200, {"name": name}
        if method == "GET" and name in self.contexts:
            return 200, self.contexts[name]
        return 404, {"error": {"code": 404, "status": "NOT_FOUND", "message": f"{name} not found"}}

    def _storage(self, request: Request) -> tuple[int, Any]:
        # A bucket that exists sends the SDK to Resource Manager (project number, to rule
        # out bucket squatting), which no local server stands in for: buckets here start
        # missing, so the SDK creates the pipeline root's bucket and grants the run's
        # service account on it, all through Cloud Storage's API.
        method, parts = request.method, request.path.split("/")
        if method == "POST" and len(parts) == 4:
            bucket = request.json()["name"]
            self.buckets[bucket] = {"name": bucket, "kind": "storage#bucket"}
            return 200, self.buckets[bucket]
        bucket = parts[4] if len(parts) > 4 else ""
        if parts[5:] == ["iam"]:
            return 200, request.json() if method == "PUT" else {"bindings": []}
        if method == "GET" and bucket in self.buckets:
            return 200, self.buckets[bucket]
        return 404, {"error": {"code": 404, "message": f"bucket {bucket} not found"}}

    def answer(self, request: Request) -> tuple[int, Any]:
        method, path, query = request.method, request.path, request.query
        if path.startswith("/storage/v1/b"):
            return self._storage(request)
        if "/metadataStores/" in path:
            return self._metadata(request, path[len("/v1/") :])
        if path.endswith("/pipelineJobs") and method == "POST":
            job_id = query.get("pipelineJobId") or self.new_id("job")
            name = f"{path[len('/v1/') :]}/{job_id}"
            store = f"{path[len('/v1/') : -len('/pipelineJobs')]}/metadataStores/default"
            run_context = {"name": f"{store}/contexts/{job_id}", "displayName": job_id,
                           "schemaTitle": "system.PipelineRun"}  # fmt: skip
            self.contexts[run_context["name"]] = run_context
            job = {
                **request.json(),
                "name": name,
                "state": "PIPELINE_STATE_PENDING",
                "createTime": "2026-12-01T00:00:00Z",
                "jobDetail": {"pipelineRunContext": run_context},
            }
            self.jobs[name] = job
            return 200, job
        if path.endswith("/pipelineJobs") and method == "GET":
            return 200, {"pipelineJobs": list(self.jobs.values())[::-1]}
        if path.endswith("/schedules") and method == "POST":
            name = f"{path[len('/v1/') :]}/{self.new_id('schedule')}"
            schedule = {**request.json(), "name": name, "state": "ACTIVE"}
            self.schedules[name] = schedule
            return 200, schedule
        if method == "GET" and path[len("/v1/") :] in self.jobs:
            return 200, self.jobs[path[len("/v1/") :]]
        if method == "GET" and path[len("/v1/") :] in self.schedules:
            return 200, self.schedules[path[len("/v1/") :]]
        return super().answer(request)
