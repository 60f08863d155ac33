"""A stand-in for Vertex AI's CustomJob service (v1 REST) on 127.0.0.1, for tests.

Answers create, get, list (``labels.KEY="VALUE"`` filters) and cancel, with the checks the
service makes on a request that matter here (a display name; every worker pool with a
machine type, a replica count and a container image; an accelerator type and count given
together), records every request, and lets the test play the service by setting a job's
state (:meth:`VertexCustomJobServer.set_state`).
"""

from __future__ import annotations

import re
from typing import Any

from kfpkit.testing.http import HttpError, RecordingServer, Request

_PARENT = r"/v1/(projects/[^/]+/locations/[^/]+)"
_LABEL_FILTER = re.compile(r'labels\.([a-z0-9_-]+)="([^"]*)"\Z')


class VertexCustomJobServer(RecordingServer):
    def __init__(self) -> None:
        super().__init__()
        self.jobs: dict[str, dict[str, Any]] = {}

    def set_state(self, name: str, state: str, message: str = "") -> None:
        """Plays the service: the job ``name`` moves to ``state`` (with an error message)."""
        with self._lock:
            self.jobs[name]["state"] = state
            if message:
                self.jobs[name]["error"] = {"code": 9, "message": message}

    def answer(self, request: Request) -> Any:
        path, method = request.path, request.method
        m = re.fullmatch(_PARENT + r"/customJobs", path)
        if m and method == "POST":
            return self._create(m.group(1), request.json())
        if m and method == "GET":
            return {"customJobs": self._list(request.query.get("filter", ""))}
        m = re.fullmatch(_PARENT + r"/customJobs/([^/:]+)(:cancel)?", path)
        if m:
            name = f"{m.group(1)}/customJobs/{m.group(2)}"
            if name not in self.jobs:
                raise HttpError(404, "NOT_FOUND", f"CustomJob {name} not found")
            if m.group(3) and method == "POST":
                if self.jobs[name]["state"] not in ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED"):
                    self.jobs[name]["state"] = "JOB_STATE_CANCELLED"
                return {}
            if not m.group(3) and method == "GET":
                return self.jobs[name]
        return super().answer(request)

    def _create(self, parent: str, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("displayName"):
            raise HttpError(400, "INVALID_ARGUMENT", "display_name is required")
        pools = (body.get("jobSpec") or {}).get("workerPoolSpecs") or []
        if not pools:
            raise HttpError(400, "INVALID_ARGUMENT", "worker_pool_specs is required")
        for i, pool in enumerate(pools):
            machine = pool.get("machineSpec") or {}
            if not machine.get("machineType"):
                raise HttpError(400, "INVALID_ARGUMENT", f"pool {i}: machine_type is required")
            if bool(machine.get("acceleratorType")) != bool(machine.get("acceleratorCount")):
                raise HttpError(400, "INVALID_ARGUMENT",
                                f"pool {i}: accelerator type and count go together")  # fmt: skip
            if int(pool.get("replicaCount", 0)) < 1:
                raise HttpError(400, "INVALID_ARGUMENT", f"pool {i}: replica_count must be >= 1")
            if not (pool.get("containerSpec") or {}).get("imageUri"):
                raise HttpError(400, "INVALID_ARGUMENT", f"pool {i}: image_uri is required")
        name = f"{parent}/customJobs/{len(self.jobs) + 1000}"
        job = {**body, "name": name, "state": "JOB_STATE_PENDING",
               "createTime": "2026-12-01T00:00:00Z"}  # fmt: skip
        self.jobs[name] = job
        return job

    def _list(self, filter: str) -> list[dict[str, Any]]:
        if not filter:
            return list(self.jobs.values())
        m = _LABEL_FILTER.match(filter)
        if not m:
            raise HttpError(400, "INVALID_ARGUMENT", f"unsupported filter {filter!r}")
        key, value = m.groups()
        return [j for j in self.jobs.values() if (j.get("labels") or {}).get(key) == value]
