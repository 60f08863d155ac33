"""``kfpkit images push``: images a cluster can pull, pinned by digest.

Each family's local image (built by images/build.py, which labels it with
:data:`kfpkit.images.CONTENT_LABEL`) is pushed as ``REGISTRY/<family>:<version>`` and
``REGISTRY/<family>:<content hash>``; the digest the registry answers is recorded in a lock
file (``images/pushed.json`` by default)::

    {"registry": "...", "images": {"core": "REGISTRY/core@sha256:..."},
     "tags": {"core": ["0.1.0", "<content hash>"]}}

A targets file's ``images: {lock: FILE}`` compiles against those digests, so a run names
exactly the bytes that were pushed. Its ``images`` object is also the format of
``KFPKIT_IMAGE_PINS``.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

from kfpkit import images
from kfpkit.runtime.retry import retry

# docker push's last line: "<tag>: digest: sha256:<hex> size: <n>"
_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")
# Failures worth another try: the registry or the network, not a refused or unknown image.
_TRANSIENT = re.compile(
    r"timeout|timed out|connection reset|connection refused|EOF|50[234]|too many requests",
    re.IGNORECASE,
)


def _docker(*args: str) -> str:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def content_hash(ref: str) -> str:
    """The content-hash label of a local image; RuntimeError when it is not built here."""
    try:
        label = _docker(
            "image", "inspect", "--format",
            '{{index .Config.Labels "' + images.CONTENT_LABEL + '"}}', ref,
        ).strip()  # fmt: skip
    except RuntimeError as e:
        raise RuntimeError(f"{ref} is not a local image: build it first (make images) ({e})") from e
    if not label or label == "<no value>":
        raise RuntimeError(
            f"{ref} has no {images.CONTENT_LABEL} label (not built by images/build.py)"
        )
    return label


def _push(ref: str) -> str:
    """Pushes one tag; returns the manifest digest the registry answered."""
    out = retry(
        lambda: _docker("push", ref),
        lambda e: bool(_TRANSIENT.search(str(e))),
        attempts=4,
        what=f"docker push {ref}",
    )
    found = _DIGEST.findall(out)
    if not found:
        raise RuntimeError(f"docker push {ref} printed no digest:\n{out}")
    return found[-1]


def push(
    registry: str, families: Sequence[str] = (), lock: Path = Path("images/pushed.json")
) -> dict[str, str]:
    """Pushes ``families`` (default: every family) to ``registry``; returns family ->
    ``repo@sha256:...`` and records it in ``lock`` (entries of other families pushed to the
    same registry earlier are kept)."""
    registry = images.check_registry(registry.rstrip("/"), "--registry")
    families = list(families) or list(images.FAMILIES)
    known = (*images.FAMILIES, *images.GPU_VARIANTS.values())
    unknown = [f for f in families if f not in known]
    if unknown:
        raise ValueError(f"Unknown image family {unknown[0]!r}; known: {', '.join(known)}")
    # every image is checked before the first push: no half-pushed set for a missing one
    sources = {f: (images.image(f), content_hash(images.image(f))) for f in families}
    version = images.tag()

    recorded: dict = {"registry": registry, "images": {}, "tags": {}}
    if lock.exists():
        earlier = json.loads(lock.read_text())
        if isinstance(earlier, dict) and earlier.get("registry") == registry:
            recorded = {**recorded, **earlier}
    pushed = {}
    for family, (source, digest_tag) in sources.items():
        repo = f"{registry}/{family}"
        digests = set()
        for tag in (version, digest_tag):
            _docker("tag", source, f"{repo}:{tag}")
            digests.add(_push(f"{repo}:{tag}"))
        if len(digests) != 1:  # the same image under two tags is one manifest
            raise RuntimeError(f"{repo}: the registry answered two digests {sorted(digests)}")
        pushed[family] = f"{repo}@{digests.pop()}"
        recorded["images"][family] = pushed[family]
        recorded["tags"][family] = [version, digest_tag]
    lock.parent.mkdir(parents=True, exist_ok=True)
    tmp = lock.with_name(f".{lock.name}.tmp")
    tmp.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")
    tmp.replace(lock)
    return pushed
