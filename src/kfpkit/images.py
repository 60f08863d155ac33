"""The one place that names kfpkit's container images.

Every component takes its image from :func:`image`. Point kfpkit at your own registry (for
example after mirroring the images into an air-gapped cluster) with environment variables set
before ``kfpkit`` is imported:

- ``KFPKIT_IMAGE_REGISTRY`` (default ``ghcr.io/kfpkit``)
- ``KFPKIT_IMAGE_TAG`` (default: the package version)
- ``KFPKIT_IMAGE_PINS``: a JSON object family -> full image reference (a content tag or a
  digest), which wins over the two above for the families it names. ``kfpkit run --cache``
  pins each family to its content-hash tag, so KFP's cache, keyed by image reference, never
  serves a result of an older image under the same version tag.
"""

from __future__ import annotations

import json
import os
import re

from kfpkit import __version__, catalog

DEFAULT_REGISTRY = "ghcr.io/kfpkit"
# Label images/build.py puts on every image: a hash of everything that went into it.
CONTENT_LABEL = "org.kfpkit.content-hash"

# Image families: one per dependency island (see images/<family>/Dockerfile).
FAMILIES = ("core", "tfdv", "train")
# Variants built on demand (``make image-<variant>``), not by ``make images``: family -> its
# GPU build. kfpkit.accelerators switches a task to the variant when it asks for GPUs.
GPU_VARIANTS = {"train": "train-gpu"}

# The family each component runs in (kfpkit.catalog, the one list). Its runtime tests run in a
# venv made from that family's lock (``make test``), so they test the same stack the image ships.
COMPONENT_FAMILIES = {c.name: c.family for c in catalog.COMPONENTS}

_REGISTRY_RE = re.compile(r"^[a-z0-9][a-z0-9.:_/-]*[a-z0-9]\Z")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")


def registry() -> str:
    value = os.environ.get("KFPKIT_IMAGE_REGISTRY", DEFAULT_REGISTRY).rstrip("/")
    if not _REGISTRY_RE.match(value):
        raise ValueError(f"KFPKIT_IMAGE_REGISTRY is not a valid registry path: {value!r}")
    return value


def tag() -> str:
    value = os.environ.get("KFPKIT_IMAGE_TAG", __version__)
    if not _TAG_RE.match(value):
        raise ValueError(f"KFPKIT_IMAGE_TAG is not a valid image tag: {value!r}")
    return value


def component_image(module: str) -> str:
    """The image of the component whose KFP definition is ``module`` (``__name__`` of
    ``kfpkit.components.<name>.component``): its family's, from the catalog."""
    name = module.split(".")[2] if module.startswith("kfpkit.components.") else module
    return image(catalog.component(name).family)


def image(family: str) -> str:
    """Full reference of an image family, e.g. ``ghcr.io/kfpkit/core:0.1.0``."""
    known = (*FAMILIES, *GPU_VARIANTS.values())
    if family not in known:
        raise ValueError(f"Unknown image family {family!r}; known: {', '.join(known)}")
    pinned = pins().get(family)
    return pinned or f"{registry()}/{family}:{tag()}"


_REFERENCE_RE = re.compile(r"^[a-z0-9][a-z0-9.:_/-]*[a-z0-9](:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
                           r"(@sha256:[0-9a-f]{64})?\Z")  # fmt: skip


# A lower-case name: a target's, a family's.
NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,62}\Z")


def check_registry(value: object, what: str) -> str:
    """``value`` if it is a registry path (``host[:port]/path``), else ValueError naming it."""
    if not isinstance(value, str) or not _REGISTRY_RE.match(value):
        raise ValueError(f"{what}: {value!r} is not a valid registry path")
    return value


def check_tag(value: object, what: str) -> str:
    if not isinstance(value, str) or not _TAG_RE.match(value):
        raise ValueError(f"{what}: {value!r} is not a valid image tag")
    return value


def check_reference(value: object, what: str) -> str:
    """``value`` if it is an image reference (``repo[:tag][@sha256:...]``), else ValueError."""
    if not isinstance(value, str) or not _REFERENCE_RE.match(value):
        raise ValueError(f"{what}: {value!r} is not an image reference")
    return value


def pins() -> dict[str, str]:
    """``KFPKIT_IMAGE_PINS``, checked: family -> image reference."""
    text = os.environ.get("KFPKIT_IMAGE_PINS", "")
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"KFPKIT_IMAGE_PINS is not a JSON object: {text!r} ({e})") from e
    if not isinstance(value, dict):
        raise ValueError(f"KFPKIT_IMAGE_PINS is not a JSON object: {text!r}")
    for family, ref in value.items():
        if not isinstance(ref, str) or not _REFERENCE_RE.match(ref):
            raise ValueError(f"KFPKIT_IMAGE_PINS: {family!r} -> {ref!r} is not an image reference")
    return value
