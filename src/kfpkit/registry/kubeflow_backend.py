"""The Kubeflow Model Registry through its ``model-registry`` Python client (REST).

A registered model per name; each registration is a model version named ``1``, ``2``, ...
with one model artifact whose URI is the model's (nothing is uploaded). Lineage and metrics
are the version's customProperties (``kfpkit.<key>``, ``kfpkit.metric.<name>``). The Model
Registry has no aliases: kfpkit keeps them as customProperties of the registered model
(``kfpkit.alias.<alias>`` -> version name), so moving one is a single update.
"""

from __future__ import annotations

import asyncio
import re
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
from kfpkit.runtime.retry import is_connection_error

PROP_PREFIX = LINEAGE_PREFIX
ALIAS_PREFIX = "kfpkit.alias."
MODEL_FORMAT = ("tensorflow", "2")  # KServe's model format of a SavedModel
AUTHOR = "kfpkit"
_ADDRESS = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?\Z")
_NUMBER_TRIES = 5  # another registration may take the next version number meanwhile


class KubeflowRegistry(RegistryBase):
    backend = "kubeflow"

    def __init__(self, server_address: str, user_token: str | None = None):
        if not isinstance(server_address, str) or not _ADDRESS.match(server_address):
            raise ValueError(
                f"server_address {server_address!r} is not http(s)://host[:port] of the "
                "Model Registry's REST API"
            )
        import aiohttp
        from model_registry import ModelRegistry
        from model_registry.exceptions import StoreError
        from mr_openapi import exceptions

        self._errors = exceptions
        self._store_error = StoreError
        self._connection_errors = (aiohttp.ClientConnectionError, asyncio.TimeoutError,
                                   ConnectionError)  # fmt: skip
        secure = server_address.startswith("https://")
        try:
            self._client = self._call(
                lambda: ModelRegistry(
                    server_address.rstrip("/"),
                    author=AUTHOR,
                    is_secure=secure,
                    user_token=user_token,
                ),  # fmt: skip
                "connect",
            )
        except (StoreError, exceptions.ApiException, *self._connection_errors) as e:
            raise RuntimeError(f"Kubeflow Model Registry at {server_address}: {e}") from e

    def _is_transient(self, error: BaseException) -> bool:
        if isinstance(error, self._connection_errors) or is_connection_error(error):
            return True
        return isinstance(error, self._errors.ServiceException) or (
            isinstance(error, self._errors.ApiException) and getattr(error, "status", 0) == 429
        )

    def _model(self, name: str) -> Any | None:
        return self._call(lambda: self._client.get_registered_model(name), "get model")

    def _versions(self, name: str) -> list[Any]:
        if self._model(name) is None:
            return []
        return self._call(lambda: list(self._client.get_model_versions(name)), "list versions")

    def _aliases(self, model: Any) -> dict[str, str]:
        props = dict(model.custom_properties or {}) if model is not None else {}
        return {k[len(ALIAS_PREFIX) :]: str(v) for k, v in props.items()
                if k.startswith(ALIAS_PREFIX)}  # fmt: skip

    def _to_version(self, name: str, mv: Any, aliases: dict[str, str]) -> ModelVersion:
        artifact = self._call(
            lambda: self._client.get_model_artifact(name, mv.name), "get model artifact"
        )
        props = dict(mv.custom_properties or {})
        lineage, metrics = split_properties(props)
        return ModelVersion(
            name=name,
            version=mv.name,
            uri=(artifact.uri if artifact is not None else "") or "",
            aliases=tuple(sorted(a for a, v in aliases.items() if v == mv.name)),
            created_at=utc_from_millis(mv.create_time_since_epoch),
            lineage=lineage,
            metrics=metrics,
            backend=self.backend,
            resource_name=f"registered_models/{mv.registered_model_id}/versions/{mv.id}",
        )

    def _find_registration(self, name: str, key: str) -> ModelVersion | None:
        prop = f"{PROP_PREFIX}{REGISTRATION_KEY}"
        for mv in self._versions(name):
            if (mv.custom_properties or {}).get(prop) == key:
                return self.get_version(name, mv.name)
        return None

    def _create(self, name, uri, lineage, metrics, aliases) -> ModelVersion:  # type: ignore[no-untyped-def]
        metadata: dict[str, Any] = {f"{PROP_PREFIX}{k}": v for k, v in lineage.items()}
        metadata.update({f"{METRIC_PREFIX}{k}": v for k, v in metrics.items()})
        for _ in range(_NUMBER_TRIES):
            taken = [int(v.name) for v in self._versions(name) if str(v.name).isdigit()]
            number = str(max(taken, default=0) + 1)
            try:
                self._call(
                    lambda n=number: self._client.register_model(  # type: ignore[misc]
                        name,
                        uri,
                        model_format_name=MODEL_FORMAT[0],
                        model_format_version=MODEL_FORMAT[1],
                        version=n,
                        version_description="Registered by kfpkit's register_model.",
                        metadata=metadata,
                    ),
                    "register version",
                )
            except self._store_error as e:
                if "already exists" in str(e):
                    continue
                raise RuntimeError(f"Kubeflow Model Registry: registering {name}: {e}") from e
            except self._errors.ApiException as e:
                if getattr(e, "status", 0) == 409:
                    continue
                raise RuntimeError(f"Kubeflow Model Registry: registering {name}: {e}") from e
            return self.get_version(name, number)
        raise RuntimeError(f"Kubeflow Model Registry: no free version number for {name}")

    def get_version(self, name: str, version: str) -> ModelVersion:
        mv = self._call(lambda: self._client.get_model_version(name, version), "get version")
        if mv is None:
            raise RuntimeError(f"Kubeflow Model Registry: version {name}/{version} not found")
        return self._to_version(name, mv, self._aliases(self._model(name)))

    def set_alias(self, name: str, alias: str, version: str) -> None:
        check_alias(alias)
        self.check_name(name)
        model = self._model(name)
        if model is None:
            raise ValueError(f"model {name!r} is not registered")
        if self._call(lambda: self._client.get_model_version(name, version), "get") is None:
            raise ValueError(f"model {name!r} has no version {version!r}")
        model.custom_properties = {**(model.custom_properties or {}),
                                   f"{ALIAS_PREFIX}{alias}": version}  # fmt: skip
        self._call(lambda: self._client.update(model), "move alias")

    def get_by_alias(self, name: str, alias: str) -> ModelVersion | None:
        self.check_name(name)
        check_alias(alias)
        version = self._aliases(self._model(name)).get(alias)
        return None if version is None else self.get_version(name, version)

    def list_versions(self, name: str) -> list[ModelVersion]:
        self.check_name(name)
        aliases = self._aliases(self._model(name))
        return sorted_versions(self._to_version(name, mv, aliases) for mv in self._versions(name))
