"""Test servers on 127.0.0.1 that answer the REST requests the real clients send.

Neither registry service can run here: Vertex AI is Google's, and the Kubeflow Model
Registry's server is Go with a MySQL/PostgreSQL store. These servers implement the handful of
endpoints kfpkit's backends call, with the services' documented rules (Vertex's label and
alias rules, aliases that move between versions, long-running upload operations; the Model
Registry's name uniqueness and paging), record every request for the tests to assert the wire
format, and can fail chosen requests to exercise retries.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

from kfpkit.testing.http import HttpError, RecordingServer, Request


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


_LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}\Z")
_LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}\Z")
_ALIAS = re.compile(r"[a-z][a-zA-Z0-9-]{0,126}[a-z0-9-]\Z")
_MODEL_ID = re.compile(r"[a-z_][a-z0-9_-]{0,62}\Z")


def _check_explanation_spec(spec: dict[str, Any]) -> None:
    """Vertex AI's rules for ``Model.explanationSpec`` (v1 reference): exactly one method;
    Shapley paths 1-50, integrated gradients steps 1-100; at least one input; one output."""
    bad = lambda why: HttpError(400, "INVALID_ARGUMENT", f"explanationSpec: {why}")  # noqa: E731
    methods = ("sampledShapleyAttribution", "integratedGradientsAttribution",
               "xraiAttribution", "examples")  # fmt: skip
    parameters = spec.get("parameters") or {}
    chosen = [m for m in methods if m in parameters]
    if len(chosen) != 1:
        raise bad(f"exactly one of {list(methods)} in parameters, not {chosen}")
    counts = {"sampledShapleyAttribution": ("pathCount", 50),
              "integratedGradientsAttribution": ("stepCount", 100)}  # fmt: skip
    if chosen[0] in counts:
        field, most = counts[chosen[0]]
        if not 1 <= int(parameters[chosen[0]].get(field, 0)) <= most:
            raise bad(f"{field} must be in [1, {most}]")
    metadata = spec.get("metadata") or {}
    if not metadata.get("inputs"):
        raise bad("metadata.inputs is required")
    if len(metadata.get("outputs") or {}) != 1:
        raise bad("metadata.outputs must have exactly one output")


class VertexModelServer(RecordingServer):
    """Vertex AI's Model service (v1 REST): upload (a long-running operation), get by version
    or alias, list versions (with ``labels.k="v"`` filters), merge version aliases."""

    def __init__(self) -> None:
        super().__init__()
        self.models: dict[str, list[dict[str, Any]]] = {}  # model id -> versions
        self.operations: dict[str, dict[str, Any]] = {}

    def answer(self, request: Request) -> Any:
        path = request.path
        m = re.fullmatch(r"/v1/(projects/[^/]+/locations/[^/]+)/models:upload", path)
        if m and request.method == "POST":
            return self._upload(m.group(1), request.body or {})
        m = re.fullmatch(r"/(?:ui|v1)/(projects/.+/operations/[^/]+)", path)
        if m and request.method == "GET":
            if m.group(1) not in self.operations:
                raise HttpError(404, "NOT_FOUND", f"operation {m.group(1)} not found")
            return self.operations[m.group(1)]
        m = re.fullmatch(r"/v1/(projects/[^/]+/locations/[^/]+)/models/([^/:@]+)(?:@([^/:]+))?"
                         r"(:listVersions|:mergeVersionAliases)?", path)  # fmt: skip
        if m:
            parent, model_id, version, verb = m.groups()
            if verb == ":listVersions" and request.method == "GET":
                return {"models": self._list(model_id, request.query.get("filter", ""))}
            if verb == ":mergeVersionAliases" and request.method == "POST":
                return self._merge_aliases(model_id, version, request.body or {})
            if verb is None and request.method == "GET":
                return self._version(model_id, version or "default")
        raise HttpError(404, "NOT_FOUND", f"no route for {request.method} {path}")

    def _check(self, model: dict[str, Any]) -> None:
        labels = model.get("labels") or {}
        if len(labels) > 64:
            raise HttpError(400, "INVALID_ARGUMENT", "at most 64 labels")
        for key, value in labels.items():
            if not _LABEL_KEY.match(key) or not _LABEL_VALUE.match(value):
                raise HttpError(400, "INVALID_ARGUMENT", f"invalid label {key}={value}")
        for alias in model.get("versionAliases") or []:
            if not _ALIAS.match(alias) or alias.isdigit():
                raise HttpError(400, "INVALID_ARGUMENT", f"invalid version alias {alias}")
        if not model.get("containerSpec", {}).get("imageUri"):
            raise HttpError(400, "INVALID_ARGUMENT", "containerSpec.imageUri is required")
        if "explanationSpec" in model:
            _check_explanation_spec(model["explanationSpec"])

    def _upload(self, parent: str, body: dict[str, Any]) -> Any:
        model = dict(body.get("model") or {})
        self._check(model)
        parent_model = body.get("parentModel", "")
        if parent_model:
            model_id = parent_model.rsplit("/", 1)[-1]
            if model_id not in self.models:
                raise HttpError(404, "NOT_FOUND", f"parent model {parent_model} not found")
        else:
            model_id = body.get("modelId") or f"{len(self.models) + 1000}"
            if not _MODEL_ID.match(model_id):
                raise HttpError(400, "INVALID_ARGUMENT", f"invalid model id {model_id}")
            if model_id in self.models:
                raise HttpError(409, "ALREADY_EXISTS", f"model {model_id} already exists")
            self.models[model_id] = []
        versions = self.models[model_id]
        version_id = str(len(versions) + 1)
        aliases = list(model.get("versionAliases") or [])
        if not versions and "default" not in aliases:
            aliases.append("default")  # a model's first version is its default
        for other in versions:  # an alias names one version of a model
            other["versionAliases"] = [a for a in other["versionAliases"] if a not in aliases]
        stamp = _now()
        name = f"{parent}/models/{model_id}"
        versions.append({**model, "name": name, "versionId": version_id,
                         "versionAliases": aliases, "versionCreateTime": stamp,
                         "versionUpdateTime": stamp, "createTime": stamp})  # fmt: skip
        operation = f"{name}/operations/{len(self.operations) + 1}"
        response = {"@type": "type.googleapis.com/google.cloud.aiplatform.v1.UploadModelResponse",
                    "model": name, "modelVersionId": version_id}  # fmt: skip
        self.operations[operation] = {"name": operation, "done": True, "response": response}
        return {"name": operation, "done": False}  # finished at the first poll

    def _find(self, model_id: str, version: str) -> dict[str, Any]:
        for v in self.models.get(model_id, []):
            if v["versionId"] == version or version in v["versionAliases"]:
                return v
        raise HttpError(404, "NOT_FOUND", f"model {model_id}@{version} not found")

    def _version(self, model_id: str, version: str) -> Any:
        return self._find(model_id, version)

    def _list(self, model_id: str, filter_text: str) -> list[Any]:
        if model_id not in self.models:
            raise HttpError(404, "NOT_FOUND", f"model {model_id} not found")
        found = self.models[model_id]
        for key, value in re.findall(r'labels\.([a-z0-9_-]+)="([^"]*)"', filter_text):
            found = [v for v in found if (v.get("labels") or {}).get(key) == value]
        return found

    def _merge_aliases(self, model_id: str, version: str, body: dict[str, Any]) -> Any:
        target = self._find(model_id, version)
        for change in body.get("versionAliases") or []:
            if change.startswith("-"):
                target["versionAliases"] = [a for a in target["versionAliases"] if a != change[1:]]
                continue
            self._check({"versionAliases": [change], "containerSpec": {"imageUri": "x"}})
            for other in self.models[model_id]:
                other["versionAliases"] = [a for a in other["versionAliases"] if a != change]
            target["versionAliases"].append(change)
        return target


_API = "/api/model_registry/v1"


class ModelRegistryServer(RecordingServer):
    """The Kubeflow Model Registry's REST API (v1): registered models, model versions and
    their model artifacts, with customProperties; names unique, lists paged."""

    def __init__(self) -> None:
        super().__init__()
        self.objects: dict[str, dict[str, dict[str, Any]]] = {
            "registered_models": {}, "model_versions": {}, "artifacts": {}}  # fmt: skip
        self._ids = 0

    def error_body(self, error: HttpError) -> Any:
        return {"code": error.status, "message": error.message}

    def _new(self, kind: str, body: dict[str, Any], **extra: Any) -> dict[str, Any]:
        self._ids += 1
        stamp = str(int(time.time() * 1000))
        obj = {"customProperties": {}, **body, **extra, "id": str(self._ids),
               "createTimeSinceEpoch": stamp, "lastUpdateTimeSinceEpoch": stamp}  # fmt: skip
        self.objects[kind][obj["id"]] = obj
        return obj

    def _get(self, kind: str, obj_id: str) -> dict[str, Any]:
        if obj_id not in self.objects[kind]:
            raise HttpError(404, "not_found", f"{kind} {obj_id} not found")
        return self.objects[kind][obj_id]

    def _page(self, items: list[dict[str, Any]], query: dict[str, str]) -> Any:
        size = int(query.get("pageSize") or 100)
        start = int(query.get("nextPageToken") or 0)
        page = items[start : start + size]
        more = start + size < len(items)
        return {"items": page, "nextPageToken": str(start + size) if more else "",
                "pageSize": size, "size": len(page)}  # fmt: skip

    def _one(self, items: list[dict[str, Any]], what: str) -> dict[str, Any]:
        if not items:
            raise HttpError(404, "not_found", f"{what} not found")
        return items[0]

    def answer(self, request: Request) -> Any:
        if not request.path.startswith(_API):
            raise HttpError(404, "not_found", f"no route for {request.path}")
        path, q, body = request.path[len(_API) :], request.query, request.body or {}
        rms, mvs, arts = (self.objects[k] for k in ("registered_models", "model_versions",
                                                     "artifacts"))  # fmt: skip
        method = request.method
        if path == "/registered_models" and method == "GET":
            return self._page(list(rms.values()), q)
        if path == "/registered_models" and method == "POST":
            if any(r["name"] == body.get("name") for r in rms.values()):
                raise HttpError(409, "conflict", f"registered model {body.get('name')} exists")
            return 201, self._new("registered_models", body, state=body.get("state", "LIVE"))
        if path == "/registered_model" and method == "GET":
            return self._one([r for r in rms.values() if r["name"] == q.get("name")], "model")
        m = re.fullmatch(r"/registered_models/([^/]+)(/versions)?", path)
        if m and m.group(2) and method == "GET":
            self._get("registered_models", m.group(1))
            mine = [v for v in mvs.values() if v["registeredModelId"] == m.group(1)]
            return self._page(mine, q)
        if m and method == "GET":
            return self._get("registered_models", m.group(1))
        if m and method == "PATCH":
            obj = self._get("registered_models", m.group(1))
            obj.update(body)  # customProperties, when given, replace the map
            obj["lastUpdateTimeSinceEpoch"] = str(int(time.time() * 1000))
            return obj
        if path == "/model_versions" and method == "POST":
            rm_id = body.get("registeredModelId", "")
            self._get("registered_models", rm_id)
            if any(v["registeredModelId"] == rm_id and v["name"] == body.get("name")
                   for v in mvs.values()):  # fmt: skip
                raise HttpError(409, "conflict", f"version {body.get('name')} exists")
            return 201, self._new("model_versions", body, state=body.get("state", "LIVE"))
        if path == "/model_version" and method == "GET":
            found = [v for v in mvs.values() if v["name"] == q.get("name")
                     and v["registeredModelId"] == q.get("parentResourceId")]  # fmt: skip
            return self._one(found, "model version")
        m = re.fullmatch(r"/model_versions/([^/]+)(/artifacts)?", path)
        if m and m.group(2):
            self._get("model_versions", m.group(1))
            if method == "POST":
                return 201, self._new("artifacts", body, modelVersionId=m.group(1))
            mine = [a for a in arts.values() if a["modelVersionId"] == m.group(1)]
            return self._page(mine, q)
        if m and method == "GET":
            return self._get("model_versions", m.group(1))
        if path == "/model_artifact" and method == "GET":
            found = [a for a in arts.values() if a.get("name") == q.get("name")
                     and a["modelVersionId"] == q.get("parentResourceId")]  # fmt: skip
            return self._one(found, "model artifact")
        raise HttpError(404, "not_found", f"no route for {method} {request.path}")
