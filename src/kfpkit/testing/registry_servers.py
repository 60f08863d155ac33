"""Test servers on 127.0.0.1 that answer the REST requests the real clients send.

Neither registry service can run here: Vertex AI is Google's, and the Kubeflow Model
Registry's server is Go with a MySQL/PostgreSQL store. These servers implement the handful of
endpoints kfpkit's backends call, with the services' documented rules (Vertex's label and
alias rules, aliases that move between versions, long-running upload operations; the Model
Registry's name uniqueness and paging), record every request for the tests to assert the wire
format, and can fail chosen requests to exercise retries.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

_STATUS = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
           409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
           503: "UNAVAILABLE"}  # fmt: skip


@dataclass
class Request:
    method: str
    path: str  # URL-decoded, without the query
    query: dict[str, str]
    body: Any


class HttpError(Exception):
    def __init__(self, code: int, status: str, message: str):
        super().__init__(message)
        self.code, self.status, self.message = code, status, message


@dataclass
class _Failure:
    matches: Callable[[Request], bool]
    code: int
    times: int


class _TestServer:
    """A threaded HTTP server with a JSON route table, a request log and failure injection."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._failures: list[_Failure] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                request = Request(
                    self.command,
                    unquote(split.path),
                    {k: v[0] for k, v in parse_qs(split.query).items()},
                    json.loads(raw) if raw else None,
                )
                with server._lock:
                    server.requests.append(request)
                    try:
                        server._fail_if_asked(request)
                        result = server.route(request)  # a document, or (status, document)
                        code, doc = result if isinstance(result, tuple) else (200, result)
                    except HttpError as e:
                        code, doc = e.code, server.error_body(e)
                data = json.dumps(doc).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._http.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def __enter__(self):  # type: ignore[no-untyped-def]
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._http.shutdown()
        self._http.server_close()

    def fail(self, matches: Callable[[Request], bool], code: int = 503, times: int = 1) -> None:
        """The next ``times`` requests that ``matches`` accepts get HTTP ``code``."""
        with self._lock:
            self._failures.append(_Failure(matches, code, times))

    def _fail_if_asked(self, request: Request) -> None:
        for failure in self._failures:
            if failure.times > 0 and failure.matches(request):
                failure.times -= 1
                status = _STATUS.get(failure.code, "UNKNOWN")
                raise HttpError(failure.code, status, f"injected failure ({status})")

    def calls(self, method: str, pattern: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and re.search(pattern, r.path)]

    def route(self, request: Request) -> Any:
        raise NotImplementedError

    def error_body(self, error: HttpError) -> Any:
        return {"error": {"code": error.code, "message": error.message, "status": error.status}}


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


_LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}\Z")
_LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}\Z")
_ALIAS = re.compile(r"[a-z][a-zA-Z0-9-]{0,126}[a-z0-9-]\Z")
_MODEL_ID = re.compile(r"[a-z_][a-z0-9_-]{0,62}\Z")


class VertexModelServer(_TestServer):
    """Vertex AI's Model service (v1 REST): upload (a long-running operation), get by version
    or alias, list versions (with ``labels.k="v"`` filters), merge version aliases."""

    def __init__(self) -> None:
        super().__init__()
        self.models: dict[str, list[dict[str, Any]]] = {}  # model id -> versions
        self.operations: dict[str, dict[str, Any]] = {}

    def route(self, request: Request) -> Any:
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


class ModelRegistryServer(_TestServer):
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

    def route(self, request: Request) -> Any:
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
