"""MLflow's model registry: the embedded default on SQLite (no server), or any MLflow store.

A version's source is the model's own URI (the published SavedModel): MLflow records it and
copies nothing. Lineage and metrics are version tags (``kfpkit.<key>``,
``kfpkit.metric.<name>``); aliases are MLflow's own (``models:/<name>@champion``).
"""

from __future__ import annotations

import os
from typing import Any

from kfpkit.registry.base import (
    LINEAGE_PREFIX,
    METRIC_PREFIX,
    REGISTRATION_KEY,
    ModelVersion,
    RegistryBase,
    check_alias,
    sorted_versions,
    split_properties,
    utc_from_millis,
)

TAG_PREFIX = LINEAGE_PREFIX
_DB_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks")


def store_uri(registry_uri: str) -> str:
    """``registry_uri`` as MLflow takes it: a plain path becomes ``sqlite:///<absolute>``
    (its folder is created); database and server URIs pass as they are."""
    if not isinstance(registry_uri, str) or not registry_uri.strip():
        raise ValueError("registry_uri is empty: give a path for SQLite or an MLflow URI")
    if "://" not in registry_uri:
        path = os.path.abspath(registry_uri)
        if os.path.isdir(path):
            raise ValueError(f"registry_uri {registry_uri!r} is a directory, not a database file")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return f"sqlite:///{path}"
    scheme = registry_uri.split("://", 1)[0].split("+", 1)[0]
    if scheme not in _DB_SCHEMES:
        raise ValueError(
            f"registry_uri {registry_uri!r}: MLflow needs a local path (SQLite), a database "
            f"URI or an MLflow server ({', '.join(_DB_SCHEMES)}); SQLite cannot live on an "
            "object store (gs://, s3://): it needs file locks"
        )
    if scheme == "sqlite":
        path = registry_uri[len("sqlite:///") :]
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return registry_uri


class MlflowRegistry(RegistryBase):
    backend = "mlflow"

    def __init__(self, registry_uri: str):
        self.uri = store_uri(registry_uri)
        # Steps run air-gapped: no usage reporting to MLflow's servers.
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        os.environ.setdefault("DO_NOT_TRACK", "true")
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        self._exception = MlflowException
        self._client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def _is_transient(self, error: BaseException) -> bool:
        text = str(error).lower()
        if "database is locked" in text or "temporarily_unavailable" in text:
            return True
        code = getattr(error, "error_code", "")
        return code in ("TEMPORARILY_UNAVAILABLE", "RESOURCE_EXHAUSTED", "REQUEST_LIMIT_EXCEEDED")

    def _missing(self, error: BaseException) -> bool:
        return getattr(error, "error_code", "") == "RESOURCE_DOES_NOT_EXIST"

    def _registered(self, name: str) -> Any | None:
        try:
            return self._call(lambda: self._client.get_registered_model(name), "get model")
        except self._exception as e:
            if self._missing(e):
                return None
            raise RuntimeError(f"MLflow: reading model {name!r} failed: {e}") from e

    def _to_version(self, mv: Any, aliases: dict[str, str] | None = None) -> ModelVersion:
        tags = dict(mv.tags or {})
        lineage, metrics = split_properties(tags)
        if aliases is None:
            names = tuple(mv.aliases or ())
        else:
            names = tuple(sorted(a for a, v in aliases.items() if str(v) == str(mv.version)))
        return ModelVersion(
            name=mv.name,
            version=str(mv.version),
            uri=mv.source,
            aliases=names,
            created_at=utc_from_millis(mv.creation_timestamp),
            lineage=lineage,
            metrics=metrics,
            backend=self.backend,
            resource_name=f"models:/{mv.name}/{mv.version}",
        )

    def _find_registration(self, name: str, key: str) -> ModelVersion | None:
        # name and key are validated (no quotes), so the filter cannot be injected
        query = f"name = '{name}' and tag.`{TAG_PREFIX}{REGISTRATION_KEY}` = '{key}'"
        found = self._call(lambda: self._client.search_model_versions(query), "search versions")
        return self.get_version(name, str(found[0].version)) if found else None

    def _create(self, name, uri, lineage, metrics, aliases) -> ModelVersion:  # type: ignore[no-untyped-def]
        if self._registered(name) is None:
            try:
                self._call(
                    lambda: self._client.create_registered_model(
                        name, description="Registered by kfpkit's register_model."
                    ),
                    "create model",
                )
            except self._exception as e:
                if getattr(e, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
                    raise RuntimeError(f"MLflow: creating model {name!r} failed: {e}") from e
        tags = {f"{TAG_PREFIX}{k}": v for k, v in lineage.items()}
        tags.update({f"{METRIC_PREFIX}{k}": repr(v) for k, v in metrics.items()})
        try:
            mv = self._call(
                lambda: self._client.create_model_version(name, source=uri, tags=tags),
                "create version",
            )
        except self._exception as e:
            raise RuntimeError(f"MLflow: registering {uri!r} as {name!r} failed: {e}") from e
        return self._to_version(mv, {})

    def get_version(self, name: str, version: str) -> ModelVersion:
        mv = self._call(lambda: self._client.get_model_version(name, version), "get version")
        return self._to_version(mv)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        check_alias(alias)
        self._call(
            lambda: self._client.set_registered_model_alias(name, alias, version), "set alias"
        )

    def get_by_alias(self, name: str, alias: str) -> ModelVersion | None:
        self.check_name(name)
        check_alias(alias)
        try:
            mv = self._call(
                lambda: self._client.get_model_version_by_alias(name, alias), "get by alias"
            )
        except self._exception as e:
            if self._missing(e) or "not found" in str(e).lower():
                return None
            raise RuntimeError(f"MLflow: reading {name}@{alias} failed: {e}") from e
        return self._to_version(mv)

    def list_versions(self, name: str) -> list[ModelVersion]:
        self.check_name(name)
        model = self._registered(name)
        if model is None:
            return []
        aliases = {a: str(v) for a, v in (model.aliases or {}).items()}
        found = self._call(
            lambda: self._client.search_model_versions(f"name = '{name}'"), "list versions"
        )
        return sorted_versions(self._to_version(mv, aliases) for mv in found)
