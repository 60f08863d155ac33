"""Runs a pipeline on this machine with ``kfp.local.DockerRunner`` and summarises its outputs.

Each step runs in a fresh container of its kfpkit image, with host networking (so it reaches
the emulator on 127.0.0.1) and the caller's uid (so the files it writes under the pipeline
root belong to the caller). Outputs are read back from each step's executor output file.
"""

from __future__ import annotations

import contextlib
import datetime
import inspect
import json
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kfpkit import images
from kfpkit.catalog import load_pipeline
from kfpkit.runtime.executor import EXIT_CANCELLED, FAILURE_RECORD, Cancelled

CACHE_DIR = ".kfp_cache"  # under the pipeline root: kfp.local's cache entries
CANCELLED = "CANCELLED"  # the state KFP gives a cancelled run
OUTCOME_STEP = "record-outcome"  # the exit handler's task (pipelines/model_chain.py)
RUN_LABEL = "kfpkit.run-pid"  # on every step container: the pid of the process that ran it
# A stopped step gets this long to record its failure (the launchers handle SIGTERM).
STOP_TIMEOUT = 10
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class _RunningSteps:
    """The step containers running now, so that a signal can stop them whichever thread
    runs them (kfp.local runs the steps of a DAG with an exit handler in a thread pool)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: set[str] = set()
        self.cancelled = threading.Event()
        self.started: list[Path] = []  # step folders of every container started

    def add(self, container_id: str, step_dir: Path | None) -> None:
        with self._lock:
            self._ids.add(container_id)
            if step_dir is not None:
                self.started.append(step_dir)
        if self.cancelled.is_set():  # started while the run was being cancelled
            self.stop_all()

    def discard(self, container_id: str) -> None:
        with self._lock:
            self._ids.discard(container_id)

    def cancel(self) -> None:
        self.cancelled.set()
        self.stop_all()

    def stop_all(self) -> None:
        """Stops every running step (SIGTERM, then SIGKILL after STOP_TIMEOUT), in parallel,
        through a client of its own (the signal may interrupt a request of the runner's)."""
        with self._lock:
            ids = sorted(self._ids)
        if not ids:
            return
        import docker

        client = docker.from_env()

        def stop(container_id: str) -> None:
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                client.containers.get(container_id).stop(timeout=STOP_TIMEOUT)

        threads = [threading.Thread(target=stop, args=(i,), daemon=True) for i in ids]
        for t in threads:
            t.start()
        for t in threads:
            t.join(STOP_TIMEOUT + 5)


_RUNNING = _RunningSteps()


@contextlib.contextmanager
def stop_on_signals(signals: tuple[signal.Signals, ...] = STOP_SIGNALS) -> Iterator[None]:
    """While inside, SIGTERM (what ``kill``, systemd, Kubernetes and CI send), SIGINT and
    SIGHUP cancel the run: the running step containers are stopped (their launchers record
    the failure), then :class:`Cancelled` is raised in the main thread, so every ``with``
    unwinds (the emulator stops, kfp.local's workspace is removed) and :func:`run_local`
    records the outcome as cancelled. Later signals only stop steps again, so the clean-up
    itself is not interrupted. Main thread only (Python's rule for signal handlers)."""

    def cancel(signum: int, _frame: Any) -> None:
        first = not _RUNNING.cancelled.is_set()
        _RUNNING.cancel()
        if first:
            raise Cancelled(f"received signal {signal.Signals(signum).name}")

    _RUNNING.cancelled.clear()
    previous = {s: signal.signal(s, cancel) for s in signals}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@dataclass
class StepOutputs:
    task: str
    parameters: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    from_cache: bool = False  # answered by kfp.local's cache: the outputs of an earlier run


@dataclass
class LocalRun:
    pipeline: str
    run_dir: Path
    seconds: float
    steps: list[StepOutputs]

    def step(self, task: str) -> StepOutputs:
        for s in self.steps:
            if s.task == task:
                return s
        raise KeyError(f"no step {task!r}; steps: {[s.task for s in self.steps]}")


def _read_step(out: Path, from_cache: bool = False) -> StepOutputs:
    doc = json.loads(out.read_text())
    arts = {
        name: entry["artifacts"][0]
        for name, entry in doc.get("artifacts", {}).items()
        if entry.get("artifacts")
    }
    return StepOutputs(out.parent.name, doc.get("parameterValues", {}), arts, from_cache)


def _read_steps(
    run_dir: Path, cache_root: Path | None = None, cache_hits: frozenset[str] = frozenset()
) -> list[StepOutputs]:
    """The run's steps; with a cache, also those of ``cache_hits`` (tasks kfp.local answered
    from the cache), read from the earlier run whose outputs the cache returned."""
    steps = [_read_step(out) for out in sorted(run_dir.glob("*/executor_output.json"))]
    if cache_root is not None and cache_root.is_dir():
        ran = {s.task for s in steps}
        cached = {}  # task -> executor output of the run whose outputs the cache returned
        for entry in sorted(cache_root.glob("*.json"), key=lambda p: p.stat().st_mtime):
            for value in json.loads(entry.read_text()).values():
                uri = value.get("uri", "") if isinstance(value, dict) else ""
                task_dir = Path(uri).parent
                name = task_dir.name
                if uri and task_dir.parent != run_dir and name in cache_hits and name not in ran:
                    cached[task_dir.name] = task_dir / "executor_output.json"
                    break
        steps += [_read_step(out, True) for out in cached.values() if out.is_file()]
    return sorted(steps, key=lambda s: s.task)


# kfpkit run drives kfp.local and patches two of its private functions (the two below): it
# supports the kfp versions they were written and tested against (tests/test_local_kfp.py);
# compile and submit work across the project's whole range (kfp >= 2.7, `make compat`).
KFP_LOCAL_SUPPORTED = ("2.17",)  # major.minor; the dev group pins 2.17.0


def check_kfp_local(version: str | None = None) -> None:
    """RuntimeError naming the installed kfp when ``kfpkit run`` does not support it: older
    kfp.local runs neither conditions nor exit handlers, a newer one may have moved the
    private functions patched here."""
    import kfp

    found = version or kfp.__version__
    if ".".join(found.split(".")[:2]) not in KFP_LOCAL_SUPPORTED:
        raise RuntimeError(
            f"kfpkit run supports kfp {', '.join(v + '.x' for v in KFP_LOCAL_SUPPORTED)} "
            f"(kfp.local), this environment has kfp {found}: install kfp==2.17.0 "
            "(compile and submit work with any kfp >= 2.7)"
        )


def _resolve_task_output_conditions() -> None:
    """Lets kfp.local evaluate ``dsl.If(task.outputs["name"] == ...)`` on a named output.

    kfp.local (2.17) resolves a condition's channel ``pipelinechannel--<task>-<output>`` only
    for an output called ``Output``; any other name is looked up as a pipeline parameter,
    found missing, and the branch is skipped with a warning. Clusters evaluate these
    conditions correctly. This tries ``<task>``/``<output>`` at each hyphen first. Idempotent.
    """
    try:
        from kfp.local.orchestrator.enhanced_dag_orchestrator import ConditionEvaluator
    except ImportError:  # an older kfp.local without the enhanced orchestrator
        return
    original = ConditionEvaluator._resolve_pipeline_channel
    if getattr(original, "_kfpkit", False):
        return

    def resolve(channel_ref: str, io_store: Any) -> Any:
        ref = channel_ref.replace("pipelinechannel--", "")
        for i in [i for i, c in enumerate(ref) if c == "-"][::-1]:
            try:
                return io_store.get_task_output(ref[:i], ref[i + 1 :])
            except Exception:  # noqa: BLE001 - not this split: try the next one
                continue
        return original(channel_ref, io_store)

    resolve._kfpkit = True  # type: ignore[attr-defined]
    ConditionEvaluator._resolve_pipeline_channel = staticmethod(resolve)  # type: ignore[assignment]


def _step_dir(command: list[str]) -> Path | None:
    """The step's folder in the run (where its executor output goes), from the container's
    ``--executor_input``; None for a command without one."""
    for flag, value in zip(command, command[1:], strict=False):
        if flag == "--executor_input":
            with contextlib.suppress(ValueError, KeyError, TypeError):
                return Path(json.loads(value)["outputs"]["outputFile"]).parent
    return None


def _keep_exit_codes() -> None:
    """Makes kfp.local's DockerRunner report the exit code of a step that fails fast.

    kfp.local (2.17) starts each container with ``auto_remove=True``; when the container is
    gone before its exit code is read, it assumes 0, so a step that failed in under a
    second "finished with status SUCCESS" and the run went on without its outputs. This
    runs the container without auto-removal, reads the exit code, then removes it.
    Idempotent.
    """
    from docker import errors as docker_errors
    from kfp.local import docker_task_handler as handler

    if getattr(handler.run_docker_container, "_kfpkit", False):
        return

    def run_docker_container(client: Any, image: str, command: list[str], volumes: Any,
                             **container_run_args: Any) -> int:  # fmt: skip
        image = handler.add_latest_tag_if_not_present(image=image)
        if not client.images.list(name=image):
            print(f"Pulling image {image!r}")
            client.images.pull(image)
        if _RUNNING.cancelled.is_set():
            raise Cancelled("the run was cancelled before this step started")
        container = client.containers.run(
            image=image, command=command, detach=True, stdout=True, stderr=True,
            volumes=volumes, **container_run_args,
        )  # fmt: skip
        try:
            _RUNNING.add(container.id, _step_dir(command))
            for line in container.logs(stream=True):
                print(line.decode(), end="")
            return int(container.wait()["StatusCode"])
        finally:
            _RUNNING.discard(container.id)
            with contextlib.suppress(docker_errors.NotFound):
                container.remove(force=True)

    run_docker_container._kfpkit = True  # type: ignore[attr-defined]
    handler.run_docker_container = run_docker_container  # type: ignore[assignment]


def pin_images_by_content() -> dict[str, str]:
    """Pins every image family to its content-hash tag (``KFPKIT_IMAGE_PINS``).

    KFP's cache keys a step by its image reference, command and inputs: under a version tag
    that stays the same while the image changes, a rebuilt image would be answered from the
    cache of the old one. The content-hash tag (images/build.py) changes with the image.
    Must run before ``kfpkit.components`` is imported, which resolves the references.
    """
    if "kfpkit.components" in sys.modules and "KFPKIT_IMAGE_PINS" not in os.environ:
        raise RuntimeError(
            "images must be pinned before kfpkit.components is imported (kfp's cache keys on "
            "the image reference): use `kfpkit run --cache` or set KFPKIT_IMAGE_PINS"
        )
    import docker

    client = docker.from_env()
    pins = {}
    for family in images.FAMILIES:
        ref = images.image(family)
        try:
            label = client.images.get(ref).labels.get(images.CONTENT_LABEL, "")
        except docker.errors.ImageNotFound:
            label = ""
        if not label:
            raise RuntimeError(f"image {ref} is not built with a content label: run `make images`")
        pins[family] = f"{ref.rsplit(':', 1)[0]}:{label}"
    os.environ["KFPKIT_IMAGE_PINS"] = json.dumps(pins, sort_keys=True)
    return pins


class _CacheHits(logging.Filter):
    """Collects the tasks kfp.local answers from its cache: it logs each hit on the root
    logger (kfp 2.17, ``Task <name> cache hit (key=...)``); a step a condition skipped is
    not one of them. A filter, not a handler: kfp.local replaces the root's handlers."""

    _HIT = re.compile(r"^Task (\S+) cache hit\b")

    def __init__(self) -> None:
        super().__init__()
        self.tasks: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        match = self._HIT.match(record.getMessage())
        if match:
            self.tasks.add(match.group(1))
        return True


def _recorded_outcome(new_run_dirs: set[Path]) -> str:
    """What the pipeline's exit handler (record_outcome) wrote about a failed run, or
    :func:`record_cancelled` about a cancelled one, as text."""
    for run_dir in new_run_dirs:
        for path in run_dir.glob("*/outcome/outcome.json"):
            doc = json.loads(path.read_text())
            errors = doc.get("step_errors", {})
            failed = "; ".join(
                f"{step}: {errors[step]}" if errors.get(step) else step
                for step in doc.get("failed_steps", [])
            )
            return f"\n  recorded outcome: {doc.get('state')}, failed: {failed or '?'} ({path})"
    return ""


def record_cancelled(run_dir: Path, pipeline: str, reason: str) -> Path:
    """Records a cancelled run where its exit handler would have (kfp.local stops with the
    process, so the handler never runs): ``<run>/record-outcome/outcome/outcome.json``, state
    CANCELLED, in record_outcome's format. A step that was stopped before it could record its
    own failure (e.g. while importing) gets a failure record, so every step that started is
    either finished or failed."""
    from kfpkit.outcome import decide

    for step in {p for p in _RUNNING.started if p.parent == run_dir}:
        if not (step / "executor_output.json").is_file() and not (step / FAILURE_RECORD).is_file():
            record = {"exit_code": EXIT_CANCELLED, "error": f"Cancelled: {reason}"}
            step.mkdir(parents=True, exist_ok=True)
            (step / FAILURE_RECORD).write_text(json.dumps(record, sort_keys=True))
    outcome = decide({"state": CANCELLED, "error": {"message": f"run cancelled: {reason}"}},
                     str(run_dir), OUTCOME_STEP)  # fmt: skip
    outcome.pipeline_name = pipeline
    outcome.run_name = run_dir.name
    outcome.recorded_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    path = run_dir / OUTCOME_STEP / "outcome" / "outcome.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(outcome.to_dict(), indent=2) + "\n")
    tmp.replace(path)
    return path


def _local_registry(pipeline: str, root: Path) -> dict[str, str]:
    """The embedded registry of a local run, for a pipeline that registers models: MLflow on
    SQLite under the pipeline root (the only host folder the step containers see)."""
    inputs = load_pipeline(pipeline).component_spec.inputs or {}
    if "registry_uri" not in inputs:
        return {}
    return {"registry_uri": str(root / "registry" / "mlflow.db")}


def run_local(
    pipeline: str,
    arguments: dict[str, Any],
    pipeline_root: Path,
    docker_args: dict[str, Any] | None = None,
    enable_caching: bool = False,
    experiment: str = "",
) -> LocalRun:
    """Runs ``pipeline`` with ``kfp.local.DockerRunner``; raises RuntimeError if a step fails.

    A pipeline that registers models gets ``registry_uri`` = ``<pipeline_root>/registry/
    mlflow.db`` (MLflow on SQLite) unless ``arguments`` name another.

    With ``enable_caching``, a step whose image, command and inputs equal an earlier run's
    is answered from kfp.local's cache under ``<pipeline_root>/.kfp_cache`` (kfp >= 2.17);
    steps with caching turned off in the pipeline (those that read or change state outside
    their inputs) always run. Pin the images first (:func:`pin_images_by_content`).

    The run is recorded in MLflow tracking, in the registry's store (``registry_uri``, or
    ``<pipeline_root>/registry/mlflow.db``), in the experiment ``experiment`` (default: the
    pipeline's name): its parameters, every step's metrics and artifact URIs, and its state
    (FINISHED, FAILED, or KILLED when cancelled).
    """
    from kfp import local

    check_kfp_local()
    cache_args: dict[str, Any] = {}
    if enable_caching:
        if "enable_caching" not in inspect.signature(local.init).parameters:
            raise RuntimeError("local caching needs kfp >= 2.17 (kfp.local.init(enable_caching))")
        cache_args = {
            "enable_caching": True,
            "cache_root": str(pipeline_root.absolute() / CACHE_DIR),
        }

    pipeline_root = pipeline_root.absolute()
    pipeline_root.mkdir(parents=True, exist_ok=True)
    arguments = {**_local_registry(pipeline, pipeline_root), **arguments}
    run_args = {
        "network_mode": "host",
        "user": f"{os.getuid()}:{os.getgid()}",
        **(docker_args or {}),
    }
    # every step container carries the pid of this process: what a clean-up or a test finds
    labels = {RUN_LABEL: str(os.getpid()), **run_args.get("labels", {})}
    run_args["labels"] = labels
    # kfp.local removes its workspace only when the pipeline call returns; one made here is
    # removed whatever happens after local.init (a signal before the call, too)
    workspace = tempfile.mkdtemp(prefix="kfp-workspace-")
    _RUNNING.started.clear()
    if "workspace_root" in inspect.signature(local.init).parameters:  # kfp 2.17 has it
        cache_args["workspace_root"] = workspace
    local.init(
        runner=local.DockerRunner(**run_args),
        pipeline_root=str(pipeline_root),
        raise_on_error=True,
        **cache_args,
    )
    _resolve_task_output_conditions()
    _keep_exit_codes()
    before = set(_run_dirs(pipeline_root))
    hits = _CacheHits()
    root_logger = logging.getLogger()
    root_level = root_logger.level
    root_logger.addFilter(hits)
    # kfp.local checks the cache outside its own INFO logging context: let hits through
    root_logger.setLevel(min(root_level or logging.WARNING, logging.INFO))
    start = time.monotonic()
    started = time.time()
    try:
        load_pipeline(pipeline)(**arguments)
    except Exception as e:  # kfp.local raises RuntimeError naming the failed task
        outcome = _recorded_outcome(set(_run_dirs(pipeline_root)) - before)
        for run_dir in set(_run_dirs(pipeline_root)) - before:
            _track(pipeline, arguments, run_dir, None, "FAILED", started, experiment)
        raise RuntimeError(f"pipeline {pipeline!r} failed: {e}{outcome}") from e
    except (Cancelled, KeyboardInterrupt) as e:
        _RUNNING.cancel()  # a KeyboardInterrupt without stop_on_signals: stop the steps too
        reason = str(e) or "interrupted"
        outcome = ""
        for run_dir in set(_run_dirs(pipeline_root)) - before:
            record_cancelled(run_dir, pipeline, reason)
            outcome = _recorded_outcome({run_dir})
            _track(pipeline, arguments, run_dir, None, "KILLED", started, experiment)
        raise Cancelled(f"pipeline {pipeline!r} cancelled ({reason}){outcome}") from e
    finally:
        root_logger.removeFilter(hits)
        root_logger.setLevel(root_level)
        shutil.rmtree(workspace, ignore_errors=True)
    seconds = time.monotonic() - start
    new = sorted(set(_run_dirs(pipeline_root)) - before, key=lambda p: p.stat().st_mtime)
    if not new:
        raise RuntimeError(f"pipeline {pipeline!r} wrote no run folder under {pipeline_root}")
    run_dir = new[-1]
    cache_root = pipeline_root / CACHE_DIR if enable_caching else None
    steps = _read_steps(run_dir, cache_root, frozenset(hits.tasks))
    _track(pipeline, arguments, run_dir, steps, "FINISHED", started, experiment, seconds)
    return LocalRun(pipeline, run_dir, seconds, steps)


def _track(pipeline: str, arguments: dict[str, Any], run_dir: Path,
           steps: list[StepOutputs] | None, status: str, started: float, experiment: str,
           seconds: float | None = None) -> None:  # fmt: skip
    """Records the run in MLflow tracking beside its registry (kfpkit.tracking.local)."""
    from kfpkit.tracking.local import record_local_run, run_record

    spec = load_pipeline(pipeline).component_spec
    if not run_dir.name.startswith(f"{spec.name}-"):  # e.g. registry/ or serving/, made by a step
        return
    inputs = spec.inputs or {}
    params = {name: arguments.get(name, given.default) for name, given in inputs.items()
              if name in arguments or given.default is not None}  # fmt: skip
    outputs = None if steps is None else [(s.task, s.parameters, s.artifacts) for s in steps]
    record = run_record(spec.name, run_dir, params, outputs, status, seconds, experiment)
    uri = arguments.get("registry_uri") or str(run_dir.parent / "registry" / "mlflow.db")
    recorded = record_local_run(uri, record, started, time.time(), run_dir)
    if recorded is not None:
        print(f"[kfpkit] recorded run {recorded.name} ({recorded.run_id}, {status}) in "
              f"experiment {recorded.experiment!r} of {uri}", flush=True)  # fmt: skip


def _run_dirs(pipeline_root: Path) -> list[Path]:
    return [p for p in pipeline_root.iterdir() if p.is_dir() and not p.name.startswith(".")]


def summary(run: LocalRun) -> str:
    """Readable account of where every output of every step is."""
    lines = [
        f"Pipeline {run.pipeline!r} succeeded in {run.seconds:.1f}s; outputs under {run.run_dir}"
    ]
    for step in run.steps:
        cached = (
            " (from KFP's cache: inputs, image and command unchanged)" if step.from_cache else ""
        )
        lines.append(f"  step {step.task}:{cached}")
        for name, value in sorted(step.parameters.items()):
            lines.append(f"    {name} = {value!r}")
        for name, art in sorted(step.artifacts.items()):
            meta = art.get("metadata", {})
            facts = [
                f"{k}={meta[k]}"
                for k in ("table_id", "row_count", "files", "state", "failed_steps")
                if meta.get(k, "") != ""  # a split of data files has no table
            ]
            if "absent" in meta:
                facts = ["absent (not requested)"]
            if art.get("type", {}).get("schemaTitle") == "system.Metrics":
                facts = [f"{k}={v}" for k, v in sorted(meta.items())]
            lines.append(f"    {name}: {art.get('uri')}")
            if facts:
                lines.append(f"      {', '.join(facts)}")
    return "\n".join(lines)
