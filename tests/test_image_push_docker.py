"""``kfpkit images push`` against a real registry on 127.0.0.1 (Debian's ``docker-registry``,
the Distribution registry 2.8), then a pull by digest, then a compile that names that digest."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest
import yaml

from kfpkit import images
from kfpkit.image_push import push

pytestmark = pytest.mark.docker
FAMILY = "core"  # the smallest image (about 300 MB) proves the push


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``127.0.0.1:PORT``: a registry with its storage in a temporary folder (Docker allows
    127.0.0.0/8 registries without TLS)."""
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.skip("docker-registry is not installed (apt-get install docker-registry)")
    if _docker("image", "inspect", images.image(FAMILY), check=False).returncode != 0:
        pytest.skip(f"{images.image(FAMILY)} is not built (make images)")
    root = tmp_path_factory.mktemp("registry")
    port = _free_port()
    config = {
        "version": 0.1,
        "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(root / "storage")}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    (root / "config.yml").write_text(yaml.safe_dump(config))
    log = (root / "registry.log").open("w")
    proc = subprocess.Popen([binary, "serve", str(root / "config.yml")], stdout=log, stderr=log)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"docker-registry exited: {(root / 'registry.log').read_text()}")
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def _manifest_digest(host: str, repo: str, reference: str) -> str:
    request = urllib.request.Request(
        f"http://{host}/v2/{repo}/manifests/{reference}",
        method="HEAD",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.headers["Docker-Content-Digest"]


def test_push_then_pull_by_digest_then_compile_against_it(registry, tmp_path):
    repo_path = f"{registry}/kfpkit"
    lock = tmp_path / "pushed.json"
    source = images.image(FAMILY)
    source_id = _docker("image", "inspect", "--format", "{{.Id}}", source).stdout.strip()
    content = _docker(
        "image", "inspect", "--format",
        '{{index .Config.Labels "' + images.CONTENT_LABEL + '"}}', source,
    ).stdout.strip()  # fmt: skip
    pushed_tags = [f"{repo_path}/{FAMILY}:{images.tag()}", f"{repo_path}/{FAMILY}:{content}"]
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "kfpkit.cli", "images", "push",
             "--registry", repo_path, "--lock", str(lock), FAMILY],
            capture_output=True, text=True,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        recorded = json.loads(lock.read_text())
        ref = recorded["images"][FAMILY]
        repo, digest = ref.split("@")
        assert repo == f"{repo_path}/{FAMILY}" and digest.startswith("sha256:")
        assert recorded["registry"] == repo_path
        assert recorded["tags"][FAMILY] == [images.tag(), content]

        # the registry holds both tags, and both name the recorded manifest
        with urllib.request.urlopen(f"http://{registry}/v2/kfpkit/{FAMILY}/tags/list") as r:
            assert sorted(json.load(r)["tags"]) == sorted([images.tag(), content])
        for reference in (images.tag(), content, digest):
            assert _manifest_digest(registry, f"kfpkit/{FAMILY}", reference) == digest

        # pushing the same image again answers the same digest: the lock is reproducible
        assert push(repo_path, [FAMILY], lock) == {FAMILY: ref}

        # forget every local name of it in this registry, then pull it back by digest alone
        _docker("image", "rm", ref, *pushed_tags)
        assert _docker("image", "inspect", ref, check=False).returncode != 0
        _docker("pull", ref)
        assert _docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip() == source_id

        # a target whose images come from the lock names exactly that digest
        settings = tmp_path / "targets.yaml"
        settings.write_text(
            f"targets:\n  cluster:\n    base: kubeflow\n    images: {{lock: {lock.name}}}\n"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("KFPKIT_IMAGE_")}
        out = tmp_path / "compiled"
        proc = subprocess.run(
            [sys.executable, "-m", "kfpkit.cli", "compile", "--settings", str(settings),
             "--target", "cluster", "--out", str(out)],
            capture_output=True, text=True, env=env,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        spec = next(yaml.safe_load_all((out / "cluster" / "training.yaml").read_text()))
        used = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
        assert ref in used
        assert images.image(FAMILY) not in used  # every core step runs the pushed bytes
        assert images.image("train") in used  # families not in the lock keep their names
    finally:
        _docker("image", "rm", *pushed_tags, check=False)
        if lock.exists():
            _docker("image", "rm", json.loads(lock.read_text())["images"][FAMILY], check=False)


def test_push_checks_every_image_before_pushing_any(registry, tmp_path, monkeypatch):
    lock = tmp_path / "pushed.json"
    monkeypatch.setenv("KFPKIT_IMAGE_PINS", json.dumps({"tfdv": "kfpkit-test/absent:0"}))
    with pytest.raises(RuntimeError, match="kfpkit-test/absent:0 is not a local image"):
        push(f"{registry}/untouched", ["core", "tfdv"], lock)
    assert not lock.exists()
    with urllib.request.urlopen(f"http://{registry}/v2/_catalog") as r:
        assert not [r for r in json.load(r)["repositories"] if r.startswith("untouched/")]
    with pytest.raises(ValueError, match="'bad registry' is not a valid registry path"):
        push("bad registry", ["core"], lock)
    with pytest.raises(ValueError, match="Unknown image family 'gpu'"):
        push(f"{registry}/kfpkit", ["gpu"], lock)
