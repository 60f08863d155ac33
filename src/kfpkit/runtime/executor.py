"""The component contract, on the container side: read the executor input, write the output.

Every kfpkit component's launcher runs as ``python3 -m <launcher> --executor_input '{{$}}'``
inside its image. This module is the small, kfp-free helper that turns the KFP v2
``ExecutorInput`` JSON into typed Python values and writes the ``ExecutorOutput`` JSON that
KFP (clusters and ``kfp.local`` alike) reads the outputs from.

Error convention (mirrors google_cloud_pipeline_components' launchers):
- ``ValueError``: the user's input is wrong. Exit code 2, message names the bad value.
- ``RuntimeError`` and anything else: a system failure. Exit code 1.
On any failure, every output artifact path is removed and no executor output is written, so a
failed step never leaves outputs that look complete.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_log = logging.getLogger("kfpkit")

# KFP v2 mounts object stores under these local prefixes (gcsfuse, s3fs, minio).
_REMOTE_PREFIXES = {"gs://": "/gcs/", "s3://": "/s3/", "minio://": "/minio/"}

EXIT_USER_ERROR = 2
EXIT_SYSTEM_ERROR = 1
EXIT_CANCELLED = 130
# Written beside the executor output when a step fails (the output itself never is): the
# exit handler (record_outcome) reads it to name the failed step and why.
FAILURE_RECORD = "kfpkit_failure.json"


class Cancelled(BaseException):
    """Raised in the main thread when the step is asked to stop (SIGTERM/SIGINT).

    A BaseException so that ``except Exception`` in runner code does not swallow it; runners
    catch it only to cancel the remote job they are waiting on, then re-raise.
    """


def uri_to_path(uri: str) -> str:
    """Local path for an artifact URI, the way KFP v2 maps object stores into the container."""
    for scheme, mount in _REMOTE_PREFIXES.items():
        if uri.startswith(scheme):
            return mount + uri[len(scheme) :]
    if "://" in uri:
        raise ValueError(f"Unsupported artifact URI scheme: {uri!r}")
    return uri


def path_to_uri(path: str) -> str:
    """Inverse of :func:`uri_to_path` for the mounted prefixes; local paths stay as they are."""
    for scheme, mount in _REMOTE_PREFIXES.items():
        if path.startswith(mount):
            return scheme + path[len(mount) :]
    return path


@dataclass
class Artifact:
    """One input or output artifact of the step."""

    name: str
    uri: str
    schema_title: str = "system.Artifact"
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return uri_to_path(self.uri)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": {"schemaTitle": self.schema_title},
            "uri": self.uri,
            "metadata": self.metadata,
        }


def _first_artifact(entry: dict[str, Any]) -> Artifact:
    raw = entry["artifacts"][0]
    return Artifact(
        name=raw.get("name", ""),
        uri=raw.get("uri", ""),
        schema_title=raw.get("type", {}).get("schemaTitle", "system.Artifact"),
        metadata=dict(raw.get("metadata") or {}),
    )


class Executor:
    """Typed access to one step's executor input, and the collector of its outputs."""

    def __init__(self, executor_input: dict[str, Any]):
        self.raw = executor_input
        inputs = executor_input.get("inputs", {})
        outputs = executor_input.get("outputs", {})
        self._params: dict[str, Any] = dict(inputs.get("parameterValues", {}))
        self.input_artifacts = {
            k: _first_artifact(v) for k, v in inputs.get("artifacts", {}).items() if v["artifacts"]
        }
        self.output_artifacts = {
            k: _first_artifact(v) for k, v in outputs.get("artifacts", {}).items()
        }
        self._output_param_files = {
            k: v["outputFile"] for k, v in outputs.get("parameters", {}).items()
        }
        self.output_file: str = outputs.get("outputFile", "")
        self._output_params: dict[str, Any] = {}

    @classmethod
    def from_json(cls, text: str) -> Executor:
        try:
            return cls(json.loads(text))
        except json.JSONDecodeError as e:
            raise ValueError(f"--executor_input is not valid JSON: {e}") from e

    def param(self, name: str, default: Any = None) -> Any:
        return self._params.get(name, default)

    def required_param(self, name: str) -> Any:
        """A parameter with no default (data-specific names such as a label column): the
        pipeline sets it; ValueError naming it when absent or empty."""
        value = self._params.get(name)
        if value is None or value == "":
            raise ValueError(f"parameter {name!r} is missing (it has no default)")
        return value

    def json_param(self, name: str, default: Any = None) -> Any:
        """A list/dict parameter; JSON text is accepted too (e.g. from a pipeline parameter)."""
        value = self._params.get(name, default)
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError as e:
                raise ValueError(f"{name} is not valid JSON: {value!r}") from e
        return value

    def string_list_param(self, name: str, default: list[str] | None = None) -> tuple[str, ...]:
        """A list-of-strings parameter (column or feature names, command-line arguments)."""
        value = self.json_param(name, default or [])
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{name} must be a list of strings, not {value!r}")
        return tuple(value)

    def number_param(self, name: str, default: float) -> float:
        """A float parameter; text such as ``"0.1"`` is accepted too (from a pipeline parameter)."""
        value = self._params.get(name, default)
        if isinstance(value, bool):
            raise ValueError(f"{name} must be a number, not {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number, not {value!r}") from None

    def input(self, name: str) -> Artifact | None:
        """An input artifact, or None when an optional input was not connected."""
        return self.input_artifacts.get(name)

    def required_input(self, name: str) -> Artifact:
        """An input artifact the step cannot run without; ValueError naming it when absent."""
        artifact = self.input_artifacts.get(name)
        if artifact is None:
            raise ValueError(f"input artifact {name!r} is missing")
        return artifact

    def output(self, name: str) -> Artifact:
        try:
            return self.output_artifacts[name]
        except KeyError:
            raise RuntimeError(f"Component has no output artifact named {name!r}") from None

    def set_output_param(self, name: str, value: Any) -> None:
        self._output_params[name] = value

    def clear_outputs(self) -> None:
        """Removes whatever the step wrote under its output artifact paths."""
        for art in self.output_artifacts.values():
            path = art.path
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            elif os.path.lexists(path):
                os.remove(path)

    def record_failure(self, exit_code: int, error: BaseException) -> None:
        """Writes :data:`FAILURE_RECORD` beside the executor output: exit code and error."""
        if not self.output_file:
            return
        record = {"exit_code": exit_code, "error": f"{type(error).__name__}: {error}"}
        try:
            path = os.path.join(os.path.dirname(uri_to_path(self.output_file)), FAILURE_RECORD)
            _atomic_write(path, json.dumps(record, sort_keys=True))
        except OSError as e:  # the step has failed already; this record is a courtesy
            _log.warning("Could not write %s: %s", FAILURE_RECORD, e)

    def write_outputs(self) -> None:
        """Writes the executor output JSON (and output parameter files), last and atomically.

        An output artifact the step described by metadata alone (Metrics, an empty split) is
        given a file all the same: a Metrics artifact its metrics as JSON, any other an empty
        folder. KFP's local cache takes a missing output path for a deleted result and
        would never answer from the cache; a cluster uploads what is there.
        """
        for art in self.output_artifacts.values():
            if not os.path.lexists(art.path):
                if art.schema_title == "system.Metrics":
                    _atomic_write(art.path, json.dumps(art.metadata, sort_keys=True))
                else:
                    os.makedirs(art.path, exist_ok=True)
        for name, value in self._output_params.items():
            if name in self._output_param_files:
                text = value if isinstance(value, str) else json.dumps(value)
                _atomic_write(uri_to_path(self._output_param_files[name]), text)
        doc = {
            "parameterValues": self._output_params,
            "artifacts": {
                k: {"artifacts": [a.to_json()]} for k, a in self.output_artifacts.items()
            },
        }
        if not self.output_file:
            raise RuntimeError("Executor input names no outputs.outputFile")
        _atomic_write(uri_to_path(self.output_file), json.dumps(doc, sort_keys=True))


def write_text_artifact(path: str, text: str) -> None:
    """Writes a file artifact: HTML and Markdown artifacts are the file itself in KFP's UI."""
    _atomic_write(path, text)


def write_json_artifact(
    artifact: Artifact, filename: str, doc: dict[str, Any], metadata: dict[str, Any] | None = None
) -> None:
    """``doc`` as the artifact's JSON file ``filename`` (indented; written whole or not at
    all) and in its metadata beside ``file`` naming that file; ``metadata`` instead of the
    whole ``doc`` where the metadata shows a summary."""
    text = json.dumps(doc, indent=2, default=str) + "\n"
    write_text_artifact(os.path.join(artifact.path, filename), text)
    artifact.metadata.update({"file": filename, **(doc if metadata is None else metadata)})


def _atomic_write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _raise_cancelled(signum: int, _frame: Any) -> None:
    raise Cancelled(f"received signal {signal.Signals(signum).name}")


def launch(run: Callable[[Executor], None], argv: list[str] | None = None) -> int:
    """Parses ``--executor_input``, runs ``run(executor)`` and writes outputs. Returns exit code.

    ``run`` reads its parameters from the executor, does the work, fills output artifact
    metadata and output parameters. Outputs are written only if it returns normally.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser()
    parser.add_argument("--executor_input", required=True)
    args, _ = parser.parse_known_args(argv)
    signal.signal(signal.SIGTERM, _raise_cancelled)
    signal.signal(signal.SIGINT, _raise_cancelled)

    executor: Executor | None = None
    error: BaseException
    try:
        executor = Executor.from_json(args.executor_input)
        run(executor)
        executor.write_outputs()
        return 0
    except ValueError as e:
        _log.error("Invalid input: %s", e)
        code, error = EXIT_USER_ERROR, e
    except Cancelled as e:
        _log.error("Cancelled: %s", e)
        code, error = EXIT_CANCELLED, e
    except Exception as e:  # noqa: BLE001 - every other failure is a system error
        _log.error("Step failed: %s: %s\n%s", type(e).__name__, e, traceback.format_exc())
        code, error = EXIT_SYSTEM_ERROR, e
    if executor is not None:
        executor.clear_outputs()
        executor.record_failure(code, error)
    return code


def main(run: Callable[[Executor], None]) -> None:
    sys.exit(launch(run))
