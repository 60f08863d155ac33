"""Vertex AI's v1 REST API spoken directly, for the code the images run.

The Vertex-facing steps (register_model / resolve_model with the ``vertex`` backend,
trigger_pipeline with the ``vertex`` target) make a handful of calls: upload a model version
and wait for its operation, read and list versions, merge aliases, read and create a pipeline
job. google-cloud-aiplatform would bring 180 MB (its generated v1 and v1beta1 clients,
vertexai, google-genai, Cloud Storage, Resource Manager) into an image every step shares, and
seconds to each Vertex step's start; these calls need only google-auth's authorized requests
session and google-api-core's error classes, which google-cloud-bigquery already puts in the
image. The errors raised are the ones the SDK raised (``from_http_response``), so callers tell
NotFound, AlreadyExists and transient failures apart as before. The host's ``kfpkit submit``
keeps the SDK (the ``vertex`` extra): schedules and the rest of the service are its job.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
REQUEST_TIMEOUT = 120.0  # seconds per request
OPERATION_TIMEOUT = 900.0  # seconds a long-running operation may take (the SDK's wait too)
_ENDPOINT = re.compile(r"(https?://)?[A-Za-z0-9.-]+(:[0-9]{1,5})?/?\Z")


def check_endpoint(api_endpoint: str) -> str:
    """``api_endpoint`` if it is ``host[:port]`` or such a URL, else ValueError naming it."""
    if not isinstance(api_endpoint, str) or not _ENDPOINT.match(api_endpoint):
        raise ValueError(f"api_endpoint {api_endpoint!r} is not host[:port] or a URL")
    return api_endpoint


def base_url(location: str, api_endpoint: str = "") -> str:
    """``https://{location}-aiplatform.googleapis.com``, or the given endpoint (https:// when it
    names no scheme; plain http:// only for local test servers)."""
    if not api_endpoint:
        return f"https://{location}-aiplatform.googleapis.com"
    check_endpoint(api_endpoint)
    url = api_endpoint if "://" in api_endpoint else f"https://{api_endpoint}"
    return url.rstrip("/")


class VertexApi:
    """One project and region of Vertex AI's v1 REST API.

    Credentials are Application Default Credentials unless given; an ``http://`` endpoint (a
    local test server, never Google's) gets anonymous ones. Each call is one request (the
    caller retries what is transient); a status >= 400 raises google-api-core's exception
    for it (``NotFound``, ``AlreadyExists``, ``ServiceUnavailable``...).
    """

    def __init__(
        self,
        project: str,
        location: str,
        api_endpoint: str = "",
        credentials: Any = None,
        timeout: float = REQUEST_TIMEOUT,
        sleep: Callable[[float], None] = time.sleep,
    ):
        import google.auth
        from google.auth.transport.requests import AuthorizedSession

        self.url = base_url(location, api_endpoint)
        if credentials is None:
            if self.url.startswith("http://"):
                from google.auth.credentials import AnonymousCredentials

                credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
            else:
                credentials, _ = google.auth.default(scopes=SCOPES)  # type: ignore[no-untyped-call]
        self.session = AuthorizedSession(credentials)  # type: ignore[no-untyped-call]
        self.parent = f"projects/{project}/locations/{location}"
        self.timeout, self.sleep = timeout, sleep

    def call(self, method: str, path: str, *, params: dict[str, str] | None = None,
             body: Any = None) -> Any:  # fmt: skip
        """The JSON answer of ``method /v1/{path}``; google-api-core's error for a refusal."""
        from google.api_core import exceptions

        response = self.session.request(method, f"{self.url}/v1/{path}", params=params,
                                        json=body, timeout=self.timeout)  # fmt: skip
        if response.status_code >= 400:
            raise exceptions.from_http_response(response)
        return response.json() if response.content else {}

    def wait(self, operation: dict[str, Any], timeout: float = OPERATION_TIMEOUT) -> Any:
        """The ``response`` of a long-running operation once it is done (polled with growing
        pauses); its error as google-api-core's exception; DeadlineExceeded after ``timeout``."""
        from google.api_core import exceptions

        started, pause = time.monotonic(), 1.0
        while not operation.get("done"):
            if time.monotonic() - started > timeout:
                raise exceptions.DeadlineExceeded(
                    f"operation {operation.get('name')} not done after {timeout:g} s"
                )
            operation = self.call("GET", operation["name"])
            if not operation.get("done"):
                self.sleep(pause)
                pause = min(pause * 2, 10.0)
        error = operation.get("error")
        if error:
            raise exceptions.from_grpc_status(error.get("code", 2), error.get("message", ""))
        return operation.get("response", {})

    def pages(self, path: str, key: str, params: dict[str, str] | None = None) -> list[Any]:
        """Every item of a paged list (``nextPageToken``)."""
        items, query = [], dict(params or {})
        while True:
            page = self.call("GET", path, params=query)
            items += page.get(key, [])
            if not page.get("nextPageToken"):
                return items
            query["pageToken"] = page["nextPageToken"]
