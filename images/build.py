"""Builds kfpkit's images offline and only when their inputs changed.

For each family under images/: download the locked wheels on the host into a wheelhouse
(pip inside a container may reach no index), build the kfpkit wheel, and ``docker build``
with ``BASE_IMAGE``. The image is labelled with a hash of everything that goes into it
(Dockerfile, lock file, kfpkit sources, base image id); an image whose label matches is
not rebuilt. Prints each image's size.

Usage: python images/build.py [FAMILY ...]   (env: BASE_IMAGE, KFPKIT_IMAGE_REGISTRY/TAG;
KFPKIT_BYTE_COMPILE=0 builds the source-only variant that benchmarks/bench_pipeline.py
compares with)
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
from kfpkit import images  # noqa: E402

BUILD = ROOT / "build" / "images"
SOURCES = ("pyproject.toml", "setup.py", "src", "components", "pipelines")
NOT_SHIPPED = ROOT / "src" / "kfpkit" / "testing"  # left out of the wheel (setup.py)
LABEL = images.CONTENT_LABEL
DOCKERFILE = ROOT / "images" / "Dockerfile"
# Per family: packages of its lock with no cp311 wheel, built on the host from their sdists.
SOURCE_BUILDS = "build-from-source"


def sh(*cmd: str, capture: bool = False) -> str:
    out = subprocess.run(cmd, check=True, text=True, capture_output=capture)
    return out.stdout.strip() if capture else ""


def base_image() -> str:
    return os.environ.get("BASE_IMAGE") or "python:3.11-slim"


def base_image_id(base: str) -> str:
    probe = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", base], text=True, capture_output=True
    )
    if probe.returncode != 0:
        if subprocess.run(["docker", "pull", base]).returncode != 0:
            sys.exit(
                f"Base image {base!r} is neither local nor pullable. Set BASE_IMAGE to a local "
                "Debian/Python 3.11 image (images/make-local-base.sh makes one offline)."
            )
        return base_image_id(base)
    return probe.stdout.strip()


def source_files() -> list[Path]:
    files = []
    for name in SOURCES:
        p = ROOT / name
        found = [p] if p.is_file() else sorted(p.rglob("*"))
        files += [
            f
            for f in found
            if f.is_file()
            and "__pycache__" not in f.parts
            and "tests" not in f.parts
            and not f.is_relative_to(NOT_SHIPPED)
        ]
    return files


def build_wheel(out_dir: Path) -> Path:
    """kfpkit's wheel. setuptools stages files in build/lib and packs whatever it finds there,
    so a stale stage (a module moved or left out since) is removed first."""
    shutil.rmtree(ROOT / "build" / "lib", ignore_errors=True)
    sh("uv", "build", "--quiet", "--wheel", "--out-dir", str(out_dir), str(ROOT))
    return next(out_dir.glob("kfpkit-*.whl"))


def byte_compile() -> str:
    return "0" if os.environ.get("KFPKIT_BYTE_COMPILE", "1") == "0" else "1"


def content_hash(family: str, base_id: str) -> str:
    h = hashlib.sha256(base_id.encode() + b"\0byte-compile=" + byte_compile().encode())
    fam = ROOT / "images" / family
    extra = [f for f in (fam / SOURCE_BUILDS,) if f.exists()]
    for f in [DOCKERFILE, fam / "requirements.lock", *extra, *source_files()]:
        h.update(str(f.relative_to(ROOT)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:20]


def current_label(ref: str) -> str:
    probe = subprocess.run(
        ["docker", "image", "inspect", "--format", '{{index .Config.Labels "' + LABEL + '"}}', ref],
        text=True,
        capture_output=True,
    )
    return probe.stdout.strip() if probe.returncode == 0 else ""


def _pip_download(lock: Path, dest: Path, *selection: str) -> None:
    sh(
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--require-hashes",
        *selection,
        "--python-version", "3.11", "--implementation", "cp",
        "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_27_x86_64",
        "--platform", "manylinux2014_x86_64",
        "--platform", "manylinux_2_17_x86_64",
        "-r", str(lock), "-d", str(dest),
    )  # fmt: skip


def _locked_subset(lock: Path, names: set[str], dest: Path) -> Path:
    """The lock entries (with their hashes) of the named packages, or of all others."""
    entries = re.split(r"\n(?=[A-Za-z0-9])", lock.read_text())
    keep, rest = [], []
    for entry in entries:
        name = re.match(r"([A-Za-z0-9_.-]+)==", entry)
        if name:
            canonical = re.sub(r"[-_.]+", "-", name.group(1)).lower()
            (keep if canonical in names else rest).append(entry.rstrip("\n"))
    dest.write_text("\n".join(keep) + "\n")
    dest.with_suffix(".rest").write_text("\n".join(rest) + "\n")
    return dest


def wheelhouse(family: str, lock: Path) -> Path:
    """Locked wheels for CPython 3.11 / manylinux x86_64, made once per lock file.

    Packages listed in ``images/<family>/build-from-source`` have no such wheel: their
    hash-checked sdists are built into wheels on the host (under ``built/``).
    """
    listed = lock.parent / SOURCE_BUILDS
    names = set(listed.read_text().split()) if listed.exists() else set()
    digest = hashlib.sha256(lock.read_bytes() + b"\0" + ",".join(sorted(names)).encode())
    house = ROOT / "build" / "wheelhouse" / f"{family}-{digest.hexdigest()[:16]}"
    if not (house / ".complete").exists():
        shutil.rmtree(house, ignore_errors=True)
        house.mkdir(parents=True)
        if names:
            sources = _locked_subset(lock, names, house / "sources.lock")
            _pip_download(sources.with_suffix(".rest"), house, "--only-binary", ":all:")
            _pip_download(sources, house / "sdists", "--no-binary", ":all:")
            sh(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
               "-w", str(house / "built"), *map(str, (house / "sdists").iterdir()))  # fmt: skip
        else:
            _pip_download(lock, house, "--only-binary", ":all:")
        (house / ".complete").touch()
    return house


def _drop_stale_tags(family: str, keep: str) -> None:
    """Untags this family's earlier content-hash tags so rebuilds do not pile up images."""
    repo = f"{images.registry()}/{family}"
    tags = sh("docker", "image", "ls", "--format", "{{.Tag}}", repo, capture=True).split()
    stale = [f"{repo}:{t}" for t in tags if len(t) == len(keep) and t != keep]
    if stale:
        subprocess.run(["docker", "image", "rm", *stale], capture_output=True)


def build(family: str) -> None:
    ref = images.image(family)
    base = base_image()
    digest = content_hash(family, base_image_id(base))
    if current_label(ref) == digest:
        print(f"{ref}: up to date ({digest})")
    else:
        fam = ROOT / "images" / family
        ctx = BUILD / family
        shutil.rmtree(ctx, ignore_errors=True)
        (ctx / "wheelhouse").mkdir(parents=True)
        house = wheelhouse(family, fam / "requirements.lock")
        for w in house.glob("**/*.whl"):
            target = ctx / "wheelhouse" / w.relative_to(house)
            target.parent.mkdir(exist_ok=True)
            os.link(w, target)
        build_wheel(ctx / "kfpkit")
        shutil.copy(DOCKERFILE, ctx / "Dockerfile")
        shutil.copy(fam / "requirements.lock", ctx / "requirements.lock")
        sh(
            "docker",
            "build",
            "--quiet",
            "--build-arg",
            f"BASE_IMAGE={base}",
            "--build-arg",
            f"FAMILY={family}",
            "--build-arg",
            f"BYTE_COMPILE={byte_compile()}",
            "--build-arg",
            f"KFPKIT_CONTENT_HASH={digest}",
            "-t",
            ref,
            "-t",
            f"{images.registry()}/{family}:{digest}",
            str(ctx),
        )
        print(f"{ref}: built ({digest}) on {base}")
        _drop_stale_tags(family, digest)
    size = int(sh("docker", "image", "inspect", "--format", "{{.Size}}", ref, capture=True))
    print(f"{ref}: {size / 1e6:.0f} MB")


if __name__ == "__main__":
    for fam in sys.argv[1:] or images.FAMILIES:
        build(fam)
