"""Vertex AI Model Registry through its v1 REST API (kfpkit.vertex_api; no SDK in the images).

A model is one Vertex ``Model`` whose ID is the model name; each registration uploads a new
version of it (``parent_model``) pointing at the SavedModel folder (``artifact_uri``; Vertex
copies nothing), served by a prebuilt TensorFlow serving container. Aliases are Vertex's
version aliases (an alias given to a new version leaves the version that had it); a blessed
version (``champion``) also becomes the default version. Labels point back to the pipeline
run, the data and the registration (sanitised to Vertex's label rules); the whole lineage
and the metrics, which labels cannot hold (URIs), are JSON in the version description.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from kfpkit.registry.base import (
    BLESSED,
    CHAMPION,
    PIPELINE_RUN,
    PIPELINE_RUN_ID,
    REGISTRATION_KEY,
    TRAIN_DATA_TABLE,
    TRAIN_DATA_URI,
    ModelVersion,
    RegistryBase,
    check_alias,
    label_value,
    sorted_versions,
)
from kfpkit.runtime.retry import is_connection_error
from kfpkit.vertex_api import REQUEST_TIMEOUT, VertexApi, check_endpoint

# Vertex's prebuilt TensorFlow serving image (the newest TF 2 CPU one the SDK lists).
DEFAULT_SERVING_IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest"
# Labels kept on every version: label key -> lineage key.
LABELS = {
    "kfpkit-run": PIPELINE_RUN,
    "kfpkit-run-id": PIPELINE_RUN_ID,
    "kfpkit-key": REGISTRATION_KEY,
    "kfpkit-blessed": BLESSED,
    "kfpkit-train-data": TRAIN_DATA_URI,
    "kfpkit-train-table": TRAIN_DATA_TABLE,
}
_MODEL_ID = re.compile(r"[a-z][a-z0-9_-]{0,62}\Z")
_PROJECT = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]\Z")
_LOCATION = re.compile(r"[a-z]+-[a-z]+[0-9]+\Z")
_IMAGE = re.compile(r"[a-z0-9][a-z0-9.:_/-]*[a-z0-9](:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
                    r"(@sha256:[0-9a-f]{64})?\Z")  # fmt: skip


def labels_for(lineage: dict[str, str]) -> dict[str, str]:
    """Vertex labels for a version's lineage: keys and values lowercase letters, digits, _ -,
    at most 63 characters (long values end in a hash), empty ones left out."""
    out = {}
    for key, lineage_key in LABELS.items():
        value = label_value(lineage.get(lineage_key, ""))
        if value:
            out[key] = value
    return out


def _timestamp(value: Any) -> datetime:
    """An RFC 3339 time of the API (``2026-12-01T20:32:13.815564123Z``) in UTC."""
    try:
        parsed = datetime.fromisoformat(str(value))  # digits past microseconds are cut
    except ValueError:
        return datetime.fromtimestamp(0, UTC)
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class VertexRegistry(RegistryBase):
    backend = "vertex"

    def __init__(
        self,
        project: str,
        location: str,
        serving_image: str = DEFAULT_SERVING_IMAGE,
        api_endpoint: str = "",
        credentials: Any = None,
    ):
        # the next uploads' explanationSpec (register_model sets it from evaluate's explanation)
        self.explanation_spec: dict[str, Any] | None = None
        if not isinstance(project, str) or not _PROJECT.match(project):
            raise ValueError(f"project {project!r} is not a Google Cloud project id")
        if not isinstance(location, str) or not _LOCATION.match(location):
            raise ValueError(f"location {location!r} is not a Vertex AI region (us-central1)")
        if api_endpoint:
            check_endpoint(api_endpoint)
        if not isinstance(serving_image, str) or not _IMAGE.match(serving_image):
            raise ValueError(f"serving_image {serving_image!r} is not an image reference")
        from google.api_core import exceptions

        self._errors = exceptions
        self.project, self.location, self.serving_image = project, location, serving_image
        self._api = VertexApi(project, location, api_endpoint, credentials, REQUEST_TIMEOUT)

    def check_name(self, name: str) -> str:
        if not isinstance(name, str) or not _MODEL_ID.match(name):
            raise ValueError(
                f"model_name {name!r} is not a valid Vertex AI model id: 1-63 lowercase "
                "letters, digits, '_', '-', starting with a letter"
            )
        return name

    def check_uri(self, uri: str) -> None:
        # the SDK would upload a local folder to a staging bucket: kfpkit registers, never copies
        if not uri.startswith("gs://"):
            raise ValueError(f"model uri {uri!r}: Vertex AI serves models from gs:// only")

    def _is_transient(self, error: BaseException) -> bool:
        e = self._errors
        transient = (e.ServiceUnavailable, e.TooManyRequests, e.InternalServerError,
                     e.DeadlineExceeded, e.BadGateway, e.GatewayTimeout)  # fmt: skip
        return isinstance(error, transient) or is_connection_error(error)

    def _model_name(self, name: str) -> str:
        return f"projects/{self.project}/locations/{self.location}/models/{name}"

    def _system_error(self, what: str, error: Exception) -> RuntimeError:
        return RuntimeError(f"Vertex AI: {what} failed: {error}")

    def _to_version(self, model: dict[str, Any]) -> ModelVersion:
        """From the API's Model resource (one version of it, as JSON)."""
        try:
            doc = json.loads(model.get("versionDescription") or "{}").get("kfpkit", {})
        except (ValueError, AttributeError):
            doc = {}  # a version described by someone else
        resource = str(model["name"]).split("@", 1)[0]
        version_id = str(model.get("versionId", ""))
        return ModelVersion(
            name=resource.rsplit("/", 1)[-1],
            version=version_id,
            uri=model.get("artifactUri", ""),
            aliases=tuple(a for a in model.get("versionAliases") or () if a != "default"),
            created_at=_timestamp(model.get("versionCreateTime")),
            lineage=dict(doc.get("lineage") or {}),
            metrics={k: float(v) for k, v in (doc.get("metrics") or {}).items()},
            backend=self.backend,
            resource_name=f"{resource}@{version_id}",
        )

    def _get(self, name: str, version: str) -> dict[str, Any] | None:
        """The Model resource of ``name@version`` (a version id or an alias); None if absent."""
        path = f"{self._model_name(name)}@{version}"
        try:
            return self._call(lambda: self._api.call("GET", path), f"get {name}@{version}")
        except self._errors.NotFound:
            return None
        except self._errors.GoogleAPICallError as e:
            raise self._system_error(f"reading {name}@{version}", e) from e

    def _versions(self, name: str, filter: str = "") -> list[dict[str, Any]]:
        path = f"{self._model_name(name)}:listVersions"
        query = {"filter": filter} if filter else {}
        try:
            return self._call(
                lambda: self._api.pages(path, "models", query), f"list versions of {name}"
            )
        except self._errors.NotFound:
            return []
        except self._errors.GoogleAPICallError as e:
            raise self._system_error(f"listing versions of {name}", e) from e

    def _find_registration(self, name: str, key: str) -> ModelVersion | None:
        found = self._versions(name, f'labels.kfpkit-key="{key}"')
        return self._to_version(found[0]) if found else None

    def _create(self, name, uri, lineage, metrics, aliases) -> ModelVersion:  # type: ignore[no-untyped-def]
        description = json.dumps({"kfpkit": {"lineage": lineage, "metrics": metrics}},
                                  sort_keys=True)  # fmt: skip

        # what aiplatform's Model.upload sent (tests/registry/test_vertex_wire.py compares)
        model = {
            "displayName": name,
            "containerSpec": {"imageUri": self.serving_image},
            "labels": labels_for(lineage),
            "artifactUri": uri,
            # a blessed version is also the default one (what a deployment without a version gets)
            "versionAliases": [*aliases, "default"] if CHAMPION in aliases else list(aliases),
            "versionDescription": description,
            # Vertex AI's own explanations on an endpoint (kfpkit.explain.vertex), when set
            "explanationSpec": self.explanation_spec,
        }

        def upload(first: bool) -> dict[str, Any]:  # the long-running operation
            body: dict[str, Any] = {"model": {k: v for k, v in model.items() if v}}
            if first:
                body["modelId"] = name
            else:
                body["parentModel"] = self._model_name(name)
            return dict(self._api.call("POST", f"{self._api.parent}/models:upload", body=body))

        first = self._get(name, "default") is None
        what = f"upload a version of {name}"
        try:
            try:
                operation = self._call(lambda: upload(first), what)
            except self._errors.AlreadyExists:
                # another registration created the model meanwhile: become a version of it
                operation = self._call(lambda: upload(False), what)
            # each poll is retried on its own: retrying the upload would duplicate the version
            done = self._call(lambda: self._api.wait(operation), f"wait for the {what}")
        except self._errors.BadRequest as e:  # InvalidArgument, FailedPrecondition, ...
            raise ValueError(f"Vertex AI refused the upload of {uri!r} as {name!r}: {e}") from e
        except self._errors.GoogleAPICallError as e:
            raise self._system_error(f"uploading {uri!r} as {name!r}", e) from e
        return self.get_version(name, str(done["modelVersionId"]))

    def get_version(self, name: str, version: str) -> ModelVersion:
        model = self._get(name, version)
        if model is None:
            raise RuntimeError(f"Vertex AI: version {name}@{version} vanished")
        return self._to_version(model)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        check_alias(alias)
        path = f"{self._model_name(name)}@{version}:mergeVersionAliases"
        body = {"versionAliases": [alias]}
        try:
            self._call(lambda: self._api.call("POST", path, body=body), "set alias")
        except self._errors.GoogleAPICallError as e:
            raise self._system_error(f"moving alias {alias} to {name}@{version}", e) from e

    def get_by_alias(self, name: str, alias: str) -> ModelVersion | None:
        self.check_name(name)
        check_alias(alias)
        model = self._get(name, alias)
        return None if model is None else self._to_version(model)

    def list_versions(self, name: str) -> list[ModelVersion]:
        self.check_name(name)
        return sorted_versions(self._to_version(m) for m in self._versions(name))
