"""Per-target settings: one pipeline definition, compiled for local runs, Kubeflow or Vertex AI.

A settings file (the built-in one is ``pipelines/targets.yaml``; ``kfpkit compile --settings
FILE`` reads a user's own) names targets; each target may set:

- ``platform``: ``local``, ``kubeflow`` or ``vertex`` (default: the target's name, or its
  base's platform); it decides which accelerator kinds the target accepts.
- ``base``: a target (of the same file, or a built-in one) this one extends; its sections
  are updated key by key.
- ``images``: ``registry`` and ``tag`` (every family becomes ``REGISTRY/<family>:<tag>``),
  ``lock`` (a file written by ``kfpkit images push``: its pushed ``repo@sha256:`` digests,
  path relative to the settings file) and ``pins`` (family -> image reference). Precedence:
  ``KFPKIT_IMAGE_PINS`` in the environment, then ``pins``, ``lock``, ``registry``/``tag``.
- ``accelerators``: step -> ``{kind: ..., ...}`` for the steps a pipeline hands to
  :func:`configure` (the training pipeline: ``train``); kinds are the helpers of
  :mod:`kfpkit.accelerators`: ``nvidia_gpu`` (count, node_labels), ``gke_gpu`` (type, count),
  ``gke_tpu`` (type, topology) on Kubeflow, ``vertex`` (type, count) on Vertex AI.
- ``distribution``: step -> multi-worker settings for the steps that can run as a job
  (``train``): ``workers``, ``machine_type``, ``accelerator_type``, ``accelerator_count``
  (per worker), ``cpu``, ``memory``, and the platform's own (``project``, ``location`` on
  Vertex AI; ``namespace``, ``runtime`` on Kubeflow); the backend is the platform and the
  image the target's (its GPU variant for workers with accelerators); checked by
  :func:`kfpkit.training.cluster_jobs.parse_distribution`.
- ``parameters``: pipeline parameter defaults (backends, namespaces, ``serving_model_uri``);
  each applies to every pipeline that has the parameter and must be one of some pipeline's.

How a target reaches a pipeline: :func:`build` runs the pipeline's Python function again
under the target (``@dsl.pipeline`` built the graph at import time, with no target), with the
target's parameter defaults in its signature; :func:`configure`, called by the pipeline on the
tasks that take per-target settings, applies the target's accelerators (a no-op when no
target is active, as at import); every task's image is then swapped for the target's.
Unknown keys, bad accelerator names and bad image references are ValueErrors naming them.

A Kubeflow or Vertex AI target is recorded in the compiled spec, as the last sentence of the
pipeline's description (``pipelineInfo.description``, kept by every service): ``kfpkit
submit`` refuses a file compiled for Kubeflow on Vertex AI and the other way round
(:func:`check_compiled_for`). A local build records nothing: it is the pipeline as defined.
"""

from __future__ import annotations

import contextvars
import functools
import importlib.util
import inspect
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kfpkit import accelerators, images

# Package data of kfpkit.pipelines, beside the pipelines it configures.
BUILTIN_SETTINGS = Path(importlib.util.find_spec("kfpkit.pipelines").origin).parent / "targets.yaml"  # type: ignore[arg-type,union-attr]
PLATFORMS = ("local", "kubeflow", "vertex")
_SECTIONS = ("platform", "base", "images", "accelerators", "distribution", "parameters")
# Steps that can run as a multi-worker job, and the image family their workers run.
_DISTRIBUTED_STEPS = {"train": "train"}
_IMAGE_KEYS = ("registry", "tag", "lock", "pins")
# accelerator kind -> (platform, {key: (type, required)}, kfpkit.accelerators helper)
_KINDS: dict[str, tuple[str, dict[str, tuple[type, bool]], str]] = {
    "nvidia_gpu": ("kubeflow", {"count": (int, False), "node_labels": (dict, False)},
                   "use_nvidia_gpu"),
    "gke_gpu": ("kubeflow", {"type": (str, True), "count": (int, False)}, "use_gke_gpu"),
    "gke_tpu": ("kubeflow", {"type": (str, True), "topology": (str, True)}, "use_gke_tpu"),
    "vertex": ("vertex", {"type": (str, True), "count": (int, False)}, "use_vertex_accelerator"),
}  # fmt: skip
# Names each accelerator kind's ``type`` must be one of.
_TYPE_NAMES: dict[str, Any] = {
    "gke_gpu": accelerators.GKE_GPUS,
    "gke_tpu": tuple(accelerators.GKE_TPUS),
    "vertex": accelerators.VERTEX_ACCELERATORS,
}
_PARAMETER_TYPES = {str: (str,), int: (int,), float: (int, float), bool: (bool,),
                    list: (list,), dict: (dict,)}  # fmt: skip


@dataclass(frozen=True)
class Target:
    """One target's checked settings."""

    name: str
    platform: str
    image_settings: Mapping[str, Any] = field(default_factory=dict)
    lock_pins: Mapping[str, str] = field(default_factory=dict)
    accelerators: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    parameters: Mapping[str, Any] = field(default_factory=dict)
    distribution: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def distribution_of(self, step: str) -> dict[str, Any]:
        """The ``distribution`` argument of ``step`` on this target ({}: one machine): the
        target's settings, its platform as the backend, its image of the step's family."""
        spec = self.distribution.get(step)
        if not spec:
            return {}
        family = _DISTRIBUTED_STEPS[step]
        if spec.get("accelerator_count"):  # workers with GPUs run the family's GPU image
            family = images.GPU_VARIANTS.get(family, family)
        return {"backend": self.platform, "image": self.image(family), **spec}

    def image(self, family: str) -> str:
        """The family's image reference on this target."""
        env_pins = images.pins()
        if family in env_pins:
            return env_pins[family]
        pins = {**self.lock_pins, **self.image_settings.get("pins", {})}
        if family in pins:
            return pins[family]
        registry = self.image_settings.get("registry") or images.registry()
        tag = self.image_settings.get("tag") or images.tag()
        return f"{registry}/{family}:{tag}"

    def image_map(self) -> dict[str, str]:
        """Image kfpkit's components were defined with -> this target's image."""
        return {images.image(f): self.image(f) for f in _all_families()}


@dataclass(frozen=True)
class Settings:
    """The targets of one settings file, by name."""

    path: Path
    targets: Mapping[str, Target]

    def get(self, name: str) -> Target:
        if name not in self.targets:
            raise ValueError(
                f"Unknown target {name!r} in {self.path}; known: {', '.join(self.targets)}"
            )
        return self.targets[name]


def _all_families() -> tuple[str, ...]:
    return (*images.FAMILIES, *images.GPU_VARIANTS.values())


def _fail(where: str, message: str) -> ValueError:
    return ValueError(f"{where}: {message}")


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(where, f"expected a mapping, got {value!r}")
    return value


def _unknown_keys(value: Mapping[str, Any], known: Any, where: str) -> None:
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise _fail(where, f"unknown key(s) {', '.join(map(repr, unknown))}; known: "
                    f"{', '.join(known)}")  # fmt: skip


def _check_images(value: Mapping[str, Any], where: str, base_dir: Path) -> dict[str, str]:
    """Checks an ``images`` section; returns the pins of its lock file."""
    _unknown_keys(value, _IMAGE_KEYS, where)
    if "registry" in value:
        images.check_registry(value["registry"], f"{where}.registry")
    if "tag" in value:
        images.check_tag(value["tag"], f"{where}.tag")
    for family, ref in _mapping(value.get("pins"), f"{where}.pins").items():
        _check_family(family, f"{where}.pins")
        images.check_reference(ref, f"{where}.pins.{family}")
    if "lock" not in value:
        return {}
    return read_lock(base_dir / str(value["lock"]), f"{where}.lock")


def _check_family(family: str, where: str) -> None:
    if family not in _all_families():
        raise _fail(where, f"unknown image family {family!r}; known: "
                    f"{', '.join(_all_families())}")  # fmt: skip


def read_lock(path: Path, where: str = "lock") -> dict[str, str]:
    """The pinned images (family -> ``repo@sha256:...``) of a file ``kfpkit images push``
    wrote."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise _fail(where, f"{path} does not exist (`kfpkit images push` writes it)") from None
    except json.JSONDecodeError as e:
        raise _fail(where, f"{path} is not JSON ({e})") from None
    pins = _mapping(data.get("images") if isinstance(data, dict) else data, f"{path}: images")
    for family, ref in pins.items():
        _check_family(family, f"{path}: images")
        images.check_reference(ref, f"{path}: images.{family}")
        if "@sha256:" not in ref:
            raise _fail(f"{path}: images.{family}", f"{ref!r} is not pinned by digest")
    return pins


def _check_accelerator(value: Any, platform: str, where: str) -> dict[str, Any]:
    value = _mapping(value, where)
    kind = value.get("kind")
    if kind not in _KINDS:
        raise _fail(f"{where}.kind", f"unknown accelerator kind {kind!r}; known: "
                    f"{', '.join(_KINDS)}")  # fmt: skip
    kind_platform, keys, _ = _KINDS[kind]
    if platform != kind_platform:
        raise _fail(f"{where}.kind", f"{kind!r} is a {kind_platform} accelerator, and this "
                    f"target's platform is {platform!r}")  # fmt: skip
    _unknown_keys(value, ("kind", *keys), where)
    for key, (kind_type, required) in keys.items():
        if key not in value:
            if required:
                raise _fail(where, f"{key!r} is required for kind {kind!r}")
            continue
        v = value[key]
        if not isinstance(v, kind_type) or (kind_type is int and isinstance(v, bool)):
            raise _fail(f"{where}.{key}", f"expected {kind_type.__name__}, got {v!r}")
    try:
        if "count" in value:
            accelerators._check_count(value["count"])
        if kind in _TYPE_NAMES:
            accelerators._check_name(f"{kind} accelerator type", value["type"], _TYPE_NAMES[kind])
    except ValueError as e:
        raise _fail(where, str(e)) from None
    for k, v in value.get("node_labels", {}).items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise _fail(f"{where}.node_labels", f"labels are strings, got {k!r}: {v!r}")
    return value


def _check_parameters(value: Mapping[str, Any], where: str) -> None:
    known = _pipeline_parameters()
    for name, default in value.items():
        if name not in known:
            raise _fail(where, f"{name!r} is no pipeline's parameter; known: "
                        f"{', '.join(sorted(known))}")  # fmt: skip
        for pipeline, annotation in known[name]:
            allowed = _PARAMETER_TYPES.get(annotation, (object,))
            if not isinstance(default, allowed) or (
                annotation in (int, float) and isinstance(default, bool)
            ):
                kind = getattr(annotation, "__name__", annotation)
                raise _fail(f"{where}.{name}", f"{default!r} is not {kind}, {pipeline}'s type")


@functools.cache
def _pipeline_parameters() -> dict[str, list[tuple[str, Any]]]:
    """Parameter name -> (pipeline, annotation) of every registered pipeline."""
    from kfpkit.catalog import load_pipeline
    from kfpkit.pipelines import PIPELINES

    found: dict[str, list[tuple[str, Any]]] = {}
    for name in sorted(PIPELINES):
        for p in inspect.signature(load_pipeline(name).pipeline_func).parameters.values():
            found.setdefault(p.name, []).append((name, p.annotation))
    return found


def _merged(raw: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, Any]:
    merged = {k: v for k, v in base.items() if k != "base"}
    for key, value in raw.items():
        if key in ("images", "accelerators", "distribution", "parameters") and isinstance(
            value, dict
        ):
            merged[key] = {**_mapping(base.get(key), key), **value}
        elif key != "base":
            merged[key] = value
    return merged


def load(path: str | Path | None = None) -> Settings:
    """Reads and checks a settings file (default: the built-in ``pipelines/targets.yaml``)."""
    path = Path(path) if path else BUILTIN_SETTINGS
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"Settings file {path} does not exist") from None
    except yaml.YAMLError as e:
        raise ValueError(f"Settings file {path} is not YAML: {e}") from None
    data = _mapping(data, str(path))
    _unknown_keys(data, ("targets",), str(path))
    raw_targets = _mapping(data.get("targets"), f"{path}: targets")
    if not raw_targets:
        raise _fail(str(path), "names no targets")
    builtin = _raw_builtin() if path.resolve() != BUILTIN_SETTINGS else {}

    def resolve(name: str, seen: tuple[str, ...]) -> tuple[dict[str, Any], Path]:
        where = f"{path}: targets.{name}"
        if name in seen:
            raise _fail(where, f"base cycle {' -> '.join((*seen, name))}")
        if name in raw_targets:
            raw, base_dir = _mapping(raw_targets[name], where), path.parent
        elif name in builtin:
            raw, base_dir = builtin[name], BUILTIN_SETTINGS.parent
        else:
            raise _fail(f"{path}: targets.{seen[-1]}.base", f"unknown target {name!r}")
        _unknown_keys(raw, _SECTIONS, where)
        if "base" not in raw:  # a base chain's root names the platform, if it is not set
            return {"platform": name, **raw} if name in PLATFORMS else dict(raw), base_dir
        base, _ = resolve(str(raw["base"]), (*seen, name))
        return _merged(raw, base), base_dir

    targets = {}
    for name in raw_targets:
        if not isinstance(name, str) or not images.NAME_RE.match(name):
            raise _fail(f"{path}: targets", f"target name {name!r} is not a lower-case name")
        where = f"{path}: targets.{name}"
        raw, base_dir = resolve(name, ())
        platform = raw.get("platform")
        if platform not in PLATFORMS:
            raise _fail(f"{where}.platform", f"{platform!r} is not one of {', '.join(PLATFORMS)}")
        image_settings = _mapping(raw.get("images"), f"{where}.images")
        lock_pins = _check_images(image_settings, f"{where}.images", base_dir)
        accel = {
            step: _check_accelerator(spec, platform, f"{where}.accelerators.{step}")
            for step, spec in _mapping(raw.get("accelerators"), f"{where}.accelerators").items()
        }
        if accel and platform == "local":
            raise _fail(f"{where}.accelerators", "local runs take no accelerators")
        parameters = _mapping(raw.get("parameters"), f"{where}.parameters")
        _check_parameters(parameters, f"{where}.parameters")
        distribution = {
            step: _mapping(spec, f"{where}.distribution.{step}")
            for step, spec in _mapping(raw.get("distribution"), f"{where}.distribution").items()
        }
        target = Target(name, platform, image_settings, lock_pins, accel, parameters,
                        distribution)  # fmt: skip
        _check_distribution(target, f"{where}.distribution")
        targets[name] = target
    return Settings(path, targets)


def _check_distribution(target: Target, where: str) -> None:
    """The multi-worker settings the train step would get: checked now, as the step would."""
    if not target.distribution:
        return
    if target.platform == "local":
        raise _fail(where, "local runs take no distribution (one machine)")
    _unknown_keys(target.distribution, _DISTRIBUTED_STEPS, where)
    from kfpkit.training.cluster_jobs import parse_distribution

    for step in target.distribution:
        if {"backend", "image"} & set(target.distribution[step]):
            raise _fail(f"{where}.{step}", "backend and image come from the target")
        try:
            parse_distribution(target.distribution_of(step))
        except ValueError as e:
            raise _fail(f"{where}.{step}", str(e)) from None


def distribution(step: str) -> dict[str, Any]:
    """The ``distribution`` argument of ``step`` on the target being built (:func:`build`);
    {} outside a build or when the target trains on one machine."""
    active = _ACTIVE.get()
    return active[0].distribution_of(step) if active else {}


def _raw_builtin() -> dict[str, Any]:
    return _mapping(yaml.safe_load(BUILTIN_SETTINGS.read_text()).get("targets"), "targets")


# The target a pipeline is being built for, and the steps it configured.
_ACTIVE: contextvars.ContextVar[tuple[Target, set[str]] | None] = contextvars.ContextVar(
    "kfpkit_target", default=None
)


def configure(task: Any, step: str) -> Any:
    """Applies the active target's settings for ``step`` (today: its accelerators) to a task.

    Pipelines call it on the tasks that take per-target settings; outside :func:`build` (at
    import, for local runs) it does nothing.
    """
    active = _ACTIVE.get()
    if active is None:
        return task
    target, configured = active
    configured.add(step)
    spec = target.accelerators.get(step)
    if spec:
        helper = getattr(accelerators, _KINDS[spec["kind"]][2])
        options = {k: v for k, v in spec.items() if k != "kind"}
        if "type" in options:  # the helpers name it after what it is
            options[_type_argument(spec["kind"])] = options.pop("type")
        try:
            helper(task, **options)
        except ValueError as e:
            raise ValueError(f"target {target.name!r}: accelerators.{step}: {e}") from None
    return task


def _type_argument(kind: str) -> str:
    return {"gke_gpu": "gpu_type", "gke_tpu": "tpu_type", "vertex": "accelerator_type"}[kind]


def image(family: str) -> str:
    """The family's image on the target being built (:func:`build`), else kfpkit.images'.

    For images a step passes on as a value (Katib's trial image), which the swap of task
    images cannot see."""
    active = _ACTIVE.get()
    return active[0].image(family) if active else images.image(family)


_COMPILED_FOR = re.compile(r"Compiled by kfpkit for target (\S+) \(platform (\w+)\)\.\s*\Z")


def compiled_for_line(target: Target) -> str:
    """The description's sentence that records the target a pipeline was compiled for."""
    return f"Compiled by kfpkit for target {target.name} (platform {target.platform})."


def compiled_for(spec: Mapping[str, Any]) -> tuple[str, str] | None:
    """(target, platform) a compiled pipeline spec was built for; None when kfpkit's compile
    did not record one (e.g. kfp's compiler called directly)."""
    info = spec.get("pipelineInfo")
    description = info.get("description", "") if isinstance(info, Mapping) else ""
    match = _COMPILED_FOR.search(description or "")
    return (match.group(1), match.group(2)) if match else None


def check_compiled_for(spec: Mapping[str, Any], platform: str, where: str) -> None:
    """Refuses (ValueError) a spec compiled for the other remote platform than ``platform``:
    its defaults point at that platform's services (Katib, KServe and the Kubeflow Model
    Registry on Kubeflow; the Vertex AI Model Registry on Vertex AI). A spec compiled for
    ``local`` (the pipeline's own defaults) or without a record is accepted."""
    found = compiled_for(spec)
    if found is None:
        return
    target, compiled_platform = found
    if compiled_platform not in ("local", platform):
        raise ValueError(
            f"{where} was compiled for target {target!r} (platform {compiled_platform}), not "
            f"for {platform}: its defaults point at {compiled_platform}'s services; compile it "
            f"for {platform} (`kfpkit compile --target {platform}`) and submit that file"
        )


def build(pipeline: Any, target: Target, configured: set[str] | None = None) -> Any:
    """The pipeline (a ``@dsl.pipeline`` object) built again for ``target``.

    ``configured`` collects the steps the pipeline handed to :func:`configure`.
    """
    from kfp import dsl
    from kfp.dsl import pipeline_context

    func = pipeline.pipeline_func
    signature = inspect.signature(func)
    params = [
        p.replace(default=target.parameters[p.name]) if p.name in target.parameters else p
        for p in signature.parameters.values()
    ]
    # a parameter that got a default moves behind the required ones (Python's rule); KFP
    # keys parameters by name, so the order changes nothing else
    params.sort(key=lambda p: p.default is not inspect.Parameter.empty)
    rebuilt_signature = signature.replace(parameters=params)
    image_map = target.image_map()
    steps = configured if configured is not None else set()

    @functools.wraps(func)
    def rebuilt(*args: Any) -> Any:
        token = _ACTIVE.set((target, steps))
        try:
            outputs = func(**dict(zip(rebuilt_signature.parameters, args, strict=True)))
        finally:
            _ACTIVE.reset(token)
        for task in pipeline_context.Pipeline.get_default_pipeline().tasks.values():
            container = getattr(task, "container_spec", None)
            if container is not None and container.image in image_map:
                container.image = image_map[container.image]
        return outputs

    rebuilt.__signature__ = rebuilt_signature  # type: ignore[attr-defined]
    spec = pipeline.component_spec
    # a remote platform's build records itself; a local one is the pipeline as defined
    recorded = compiled_for_line(target) if target.platform != "local" else ""
    description = " ".join(filter(None, [spec.description, recorded]))
    return dsl.pipeline(name=spec.name, description=description)(rebuilt)
