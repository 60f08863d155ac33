"""The backend-neutral model registry API: one model version, one protocol, shared checks.

Every backend (MLflow, Vertex AI Model Registry, Kubeflow Model Registry) answers the same
questions in the same shape: which version holds an alias (``champion``: in production), where
its model is, when it was registered, and where it came from (lineage: data, statistics,
metrics, pipeline run). Registration is idempotent: a restarted step that registers the same
model of the same pipeline run finds the version its earlier attempt created.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from kfpkit.runtime.identity import step_key
from kfpkit.runtime.retry import retry

T = TypeVar("T")
_log = logging.getLogger("kfpkit")

BACKENDS = ("mlflow", "vertex", "kubeflow")
CHAMPION = "champion"  # the version in production
CHALLENGER = "challenger"  # the newest version that was evaluated and not blessed

# Lineage keys every backend keeps on every version (values are strings).
PIPELINE_RUN = "pipeline_run"  # dsl.PIPELINE_JOB_NAME_PLACEHOLDER
PIPELINE_RUN_ID = "pipeline_run_id"  # dsl.PIPELINE_JOB_ID_PLACEHOLDER
SOURCE_MODEL_URI = "source_model_uri"  # the artifact the version was registered from
TRAIN_DATA_URI = "train_data_uri"
TRAIN_DATA_TABLE = "train_data_table"  # the BigQuery table behind the train split
VALIDATION_DATA_URI = "validation_data_uri"
STATISTICS_URI = "statistics_uri"  # training statistics (FeatureStats.pb)
SCHEMA_URI = "schema_uri"
METRICS_URI = "metrics_uri"  # the evaluation's Metrics artifact
BLESSED = "blessed"  # "true" / "false"
HYPERPARAMETERS = "hyperparameters"  # JSON: what the model was trained with
TRAIN_DATA_SOURCE = "train_data_source"  # the data the split read (a window's table or file)
TRAIN_DATA_ROWS = "train_data_rows"
REGISTRATION_KEY = "registration_key"  # what makes a re-registration find its version

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\Z")
_ALIAS = re.compile(r"[a-z][a-z0-9-]{0,62}\Z")  # Vertex: no "_"
_LINEAGE_KEY = re.compile(r"[a-z][a-z0-9_]{0,47}\Z")
_METRIC_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,99}\Z")
MAX_LINEAGE_VALUE = 5000  # MLflow's tag value limit, the tightest of the three for text
# Bounded retries: at most 4 waits of 1, 2, 4, 8 s (with jitter): under 16 s of waiting on
# top of the calls' own timeouts.
RETRY_ATTEMPTS = 5
RETRY_MAX_DELAY = 8.0


@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model, as every backend reports it."""

    name: str
    version: str
    uri: str
    aliases: tuple[str, ...] = ()
    created_at: datetime = field(default_factory=lambda: datetime.fromtimestamp(0, UTC))
    lineage: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    backend: str = ""
    resource_name: str = ""  # the backend's own reference (models:/..., projects/..., ids)

    def age_seconds(self, now: datetime | None = None) -> float:
        return ((now or datetime.now(UTC)) - self.created_at).total_seconds()

    def to_metadata(self) -> dict[str, Any]:
        """JSON-serialisable form, for artifact metadata."""
        return {
            "name": self.name,
            "version": self.version,
            "uri": self.uri,
            "aliases": list(self.aliases),
            "created_at": self.created_at.isoformat(),
            "lineage": dict(self.lineage),
            "metrics": dict(self.metrics),
            "backend": self.backend,
            "resource_name": self.resource_name,
        }

    @classmethod
    def from_metadata(cls, meta: Mapping[str, Any]) -> ModelVersion:
        return cls(
            name=meta["name"],
            version=str(meta["version"]),
            uri=meta["uri"],
            aliases=tuple(meta.get("aliases") or ()),
            created_at=datetime.fromisoformat(meta["created_at"]),
            lineage=dict(meta.get("lineage") or {}),
            metrics={k: float(v) for k, v in (meta.get("metrics") or {}).items()},
            backend=meta.get("backend", ""),
            resource_name=meta.get("resource_name", ""),
        )


class Registry(Protocol):
    """What the components (and the continuous-training pipeline) need from a registry."""

    backend: str

    def register(
        self,
        name: str,
        uri: str,
        lineage: Mapping[str, str],
        metrics: Mapping[str, float],
        aliases: Sequence[str] = (),
    ) -> ModelVersion: ...

    def set_alias(self, name: str, alias: str, version: str) -> None: ...

    def get_by_alias(self, name: str, alias: str) -> ModelVersion | None: ...

    def list_versions(self, name: str) -> list[ModelVersion]: ...


def check_model_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"model_name {name!r} is not valid: 1-128 letters, digits, '_', '.', '-', "
            "starting with a letter or digit"
        )
    return name


def check_alias(alias: str) -> str:
    if not isinstance(alias, str) or not _ALIAS.match(alias):
        raise ValueError(
            f"alias {alias!r} is not valid: 1-63 lowercase letters, digits, '-', "
            "starting with a letter"
        )
    if alias in ("latest", "default") or re.fullmatch(r"v\d+", alias):
        raise ValueError(f"alias {alias!r} is reserved by a registry (latest, default, v<n>)")
    return alias


def check_lineage(lineage: Mapping[str, Any]) -> dict[str, str]:
    """Lineage as strings; keys validated, empty values dropped."""
    out: dict[str, str] = {}
    for key, value in lineage.items():
        if not isinstance(key, str) or not _LINEAGE_KEY.match(key):
            raise ValueError(f"lineage key {key!r} is not valid: lowercase letters, digits, '_'")
        if value is None or value == "":
            continue
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if len(text) > MAX_LINEAGE_VALUE:
            raise ValueError(
                f"lineage {key}={text[:60]!r}... is {len(text)} characters (at most "
                f"{MAX_LINEAGE_VALUE})"
            )
        out[key] = text
    return out


def check_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if not isinstance(key, str) or not _METRIC_KEY.match(key):
            raise ValueError(f"metric name {key!r} is not valid: letters, digits, '_', '.', '-'")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"metric {key}={value!r} is not a number")
        if not math.isfinite(value):
            raise ValueError(f"metric {key}={value!r} is not finite")
        out[key] = float(value)
    return out


def scalar_metrics(metadata: Mapping[str, Any]) -> dict[str, float]:
    """The overall numbers of a Metrics artifact's metadata (evaluate's): per-slice entries
    (``SEX=1/auc``), flags and text are left in the artifact, which lineage points to."""
    return {
        k: float(v)
        for k, v in metadata.items()
        if isinstance(k, str)
        and _METRIC_KEY.match(k)
        and isinstance(v, int | float)
        and not isinstance(v, bool)
        and math.isfinite(v)
    }


def registration_key(name: str, uri: str, lineage: Mapping[str, str]) -> str:
    """Same model, same URI, same pipeline run: the same registration (16 hex digits)."""
    return step_key({"name": name, "uri": uri, "run": lineage.get(PIPELINE_RUN_ID, "")})


def label_value(text: str, limit: int = 63) -> str:
    """``text`` made a valid label value for Google Cloud and Kubernetes alike: lowercase
    letters, digits, ``_`` and ``-``, at most ``limit`` characters. A value that had to be cut
    ends with 8 hex digits of its hash, so two long values stay apart."""
    value = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-")
    if len(value) <= limit:
        return value
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return value[: limit - 9].rstrip("-") + "-" + digest


# How the MLflow and Kubeflow backends store lineage and metrics: flat string properties
# (MLflow version tags, Model Registry custom properties) under these prefixes.
LINEAGE_PREFIX = "kfpkit."
METRIC_PREFIX = "kfpkit.metric."


def split_properties(props: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, float]]:
    """(lineage, metrics) back from prefixed properties; other properties are left out."""
    lineage = {
        k[len(LINEAGE_PREFIX) :]: str(v)
        for k, v in props.items()
        if k.startswith(LINEAGE_PREFIX) and not k.startswith(METRIC_PREFIX)
    }
    metrics = {
        k[len(METRIC_PREFIX) :]: float(v) for k, v in props.items() if k.startswith(METRIC_PREFIX)
    }
    return lineage, metrics


def utc_from_millis(millis: int | str | None) -> datetime:
    return datetime.fromtimestamp(int(millis or 0) / 1000, UTC)


class RegistryBase:
    """The register flow every backend shares; a backend implements the hooks below."""

    backend = ""
    sleep: Callable[[float], None] = staticmethod(time.sleep)  # between retries (tests: record)

    def register(
        self,
        name: str,
        uri: str,
        lineage: Mapping[str, Any],
        metrics: Mapping[str, Any],
        aliases: Sequence[str] = (),
    ) -> ModelVersion:
        """Registers ``uri`` as a new version of ``name`` (no copy), with ``aliases`` moved to
        it. A second call for the same model, URI and pipeline run returns the version the
        first created (aliases applied again, in case the first stopped before them)."""
        self.check_name(name)
        if not isinstance(uri, str) or not uri.strip():
            raise ValueError(f"model uri {uri!r} is empty")
        self.check_uri(uri)
        wanted = [check_alias(a) for a in aliases]
        clean = check_lineage(lineage)
        numbers = check_metrics(metrics)
        key = registration_key(name, uri, clean)
        clean[REGISTRATION_KEY] = key
        found = self._find_registration(name, key)
        if found is None:
            found = self._create(name, uri, clean, numbers, wanted)
        else:
            _log.info("%s version %s is this registration's (key %s): not registering it again",
                      name, found.version, key)  # fmt: skip
        for alias in wanted:
            if alias not in found.aliases:
                self.set_alias(name, alias, found.version)
        return self.get_version(name, found.version)

    def check_name(self, name: str) -> str:
        return check_model_name(name)

    def check_uri(self, uri: str) -> None:
        """ValueError for a model URI the backend cannot point at."""

    def _call(self, fn: Callable[[], T], what: str) -> T:
        return retry(
            fn,
            self._is_transient,
            attempts=RETRY_ATTEMPTS,
            max_delay=RETRY_MAX_DELAY,
            what=f"{self.backend} registry: {what}",
            sleep=self.sleep,
        )

    # hooks
    def _is_transient(self, error: BaseException) -> bool:
        raise NotImplementedError

    def _find_registration(self, name: str, key: str) -> ModelVersion | None:
        raise NotImplementedError

    def _create(
        self,
        name: str,
        uri: str,
        lineage: dict[str, str],
        metrics: dict[str, float],
        aliases: list[str],
    ) -> ModelVersion:
        raise NotImplementedError

    def get_version(self, name: str, version: str) -> ModelVersion:
        raise NotImplementedError

    def set_alias(self, name: str, alias: str, version: str) -> None:
        raise NotImplementedError

    def get_by_alias(self, name: str, alias: str) -> ModelVersion | None:
        raise NotImplementedError

    def list_versions(self, name: str) -> list[ModelVersion]:
        raise NotImplementedError


def sorted_versions(versions: Iterable[ModelVersion]) -> list[ModelVersion]:
    """Oldest first (numeric versions by number)."""
    return sorted(versions, key=lambda v: (int(v.version) if v.version.isdigit() else 0,
                                           v.created_at, v.version))  # fmt: skip
