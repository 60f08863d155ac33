"""A real Kubernetes API server for tests: etcd + kube-apiserver on 127.0.0.1, no controllers.

envtest-style: the API server validates, stores, versions and watches objects exactly as a
cluster's does (CRDs, the ``/status`` subresource, RBAC, 409 on a duplicate name), but nothing
acts on them; a test plays the controller by writing status. The binary is built from Debian's
``kubernetes`` source package by ``tools/kube-apiserver/build.sh`` (cached under
``.cache/kube-apiserver/``); etcd comes from Debian's ``etcd-server``.

    with KubeTestServer() as server:
        server.install_crd(crd_manifest)        # waits until Established and served
        api = server.api_client()               # kubernetes.client.ApiClient, cluster admin
        server.create_namespace("team-a")
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kfpkit import processes

ENV_BINARY = "KFPKIT_KUBE_APISERVER"  # overrides the built binary's path
_REPO = Path(__file__).resolve().parents[3]  # src/kfpkit/testing/ -> the repository
BUILT_BINARY = _REPO / ".cache" / "kube-apiserver" / "current" / "kube-apiserver"
BUILD_SCRIPT = "tools/kube-apiserver/build.sh"


def find_binary() -> str | None:
    """The kube-apiserver to run: ``$KFPKIT_KUBE_APISERVER``, else the cached build."""
    candidate = os.environ.get(ENV_BINARY) or str(BUILT_BINARY)
    return candidate if os.access(candidate, os.X_OK) else None


def find_etcd() -> str | None:
    return shutil.which("etcd")


def missing_reason() -> str | None:
    """Why a server cannot start here (for a test skip), or None when it can."""
    if find_binary() is None:
        return f"kube-apiserver is not built: run {BUILD_SCRIPT} (make kube-apiserver)"
    if find_etcd() is None:
        return "etcd is not installed (apt-get install etcd-server)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class KubeTestServer:
    """etcd + kube-apiserver in a private directory; stop() kills both and removes it."""

    def __init__(self, workdir: str | os.PathLike[str] | None = None, start_timeout: float = 60):
        binary, etcd = find_binary(), find_etcd()
        if binary is None or etcd is None:
            raise RuntimeError(missing_reason() or "kube-apiserver or etcd missing")
        self.binary, self.etcd = binary, etcd
        self._own_dir = workdir is None
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="kfpkit-kube-"))
        self.start_timeout = start_timeout
        self.token = uuid.uuid4().hex
        self.port = 0
        self._procs: list[subprocess.Popen[bytes]] = []
        self._logs: list[Any] = []

    # -- lifecycle --------------------------------------------------------------------
    @property
    def host(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> str:
        return str(self.dir / "certs" / "apiserver.crt")

    def start(self) -> KubeTestServer:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        etcd_port, peer_port = _free_port(), _free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        self._spawn(
            "etcd",
            [
                self.etcd,
                "--name=kfpkit",
                f"--data-dir={self.dir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=kfpkit={peer_url}",
                "--log-level=error",
            ],
        )
        key = self.dir / "sa.key"
        subprocess.run(
            ["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True
        )
        tokens = self.dir / "tokens.csv"
        tokens.write_text(f'{self.token},kfpkit-admin,kfpkit-admin,"system:masters"\n')
        self.port = _free_port()
        self._spawn(
            "kube-apiserver",
            [
                self.binary,
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.port}",
                "--insecure-port=0",
                f"--cert-dir={self.dir / 'certs'}",
                f"--token-auth-file={tokens}",
                "--authorization-mode=RBAC",
                f"--service-account-key-file={key}",
                f"--service-account-signing-key-file={key}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--endpoint-reconciler-type=none",
                "--enable-priority-and-fairness=false",
                "--v=0",
            ],
        )
        self._wait_ready()

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.dir / f"{name}.log", "wb")  # noqa: SIM115 - closed in stop()
        self._logs.append(log)
        self._procs.append(
            subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        )

    def log_tail(self, name: str = "kube-apiserver", lines: int = 20) -> str:
        path = self.dir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def _wait_ready(self) -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the serving cert is made at start-up
        request = urllib.request.Request(
            f"{self.host}/readyz", headers={"Authorization": f"Bearer {self.token}"}
        )
        last = [""]

        def answers_ready() -> bool:
            try:
                with urllib.request.urlopen(request, timeout=2, context=context) as response:
                    return response.status == 200 and os.path.exists(self.ca_file)
            except OSError as e:
                last[0] = str(e)
                return False

        processes.wait_ready(
            self._procs,
            answers_ready,
            self.start_timeout,
            exited=lambda proc: RuntimeError(
                f"{proc.args!r} exited with {proc.returncode}:\n"
                f"{self.log_tail('etcd')}\n{self.log_tail()}"
            ),
            not_ready=lambda: RuntimeError(
                f"kube-apiserver not ready after {self.start_timeout} s ({last[0]}):\n"
                f"{self.log_tail()}"
            ),
        )

    def stop(self) -> None:
        for proc in reversed(self._procs):
            processes.stop(proc, timeout=10)
        self._procs.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> KubeTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- clients ----------------------------------------------------------------------
    def configuration(self) -> Any:
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.host
        configuration.api_key = {"authorization": f"Bearer {self.token}"}
        configuration.ssl_ca_cert = self.ca_file
        configuration.verify_ssl = True
        return configuration

    def api_client(self) -> Any:
        """A new ``kubernetes.client.ApiClient`` with cluster-admin rights."""
        from kubernetes import client

        return client.ApiClient(self.configuration())

    def write_kubeconfig(self, path: str | os.PathLike[str]) -> str:
        """A kubeconfig file for this server (for code that loads one, e.g. a subprocess)."""
        import json

        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "kfpkit-test", "cluster": {"server": self.host,
                                                     "certificate-authority": self.ca_file}}
            ],
            "users": [{"name": "kfpkit-admin", "user": {"token": self.token}}],
            "contexts": [
                {"name": "kfpkit-test", "context": {"cluster": "kfpkit-test",
                                                     "user": "kfpkit-admin"}}
            ],
            "current-context": "kfpkit-test",
        }  # fmt: skip
        Path(path).write_text(json.dumps(doc))  # JSON is YAML
        return str(path)

    def create_namespace(self, name: str) -> None:
        """Creates a namespace; one that exists already is fine."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        with self.api_client() as api:
            try:
                client.CoreV1Api(api).create_namespace(
                    client.V1Namespace(metadata=client.V1ObjectMeta(name=name))
                )
            except ApiException as e:
                if e.status != 409:
                    raise

    def install_crd(self, manifest: Mapping[str, Any] | str | os.PathLike[str],
                    timeout: float = 30) -> dict[str, Any]:  # fmt: skip
        """Creates (or replaces) a CustomResourceDefinition from a dict or a YAML/JSON file
        and waits until it is Established and its resource is served. Returns the CRD."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        doc = _load_manifest(manifest)
        name = doc["metadata"]["name"]
        group, plural = doc["spec"]["group"], doc["spec"]["names"]["plural"]
        versions = [v["name"] for v in doc["spec"]["versions"] if v.get("served", True)]
        with self.api_client() as api:
            ext = client.ApiextensionsV1Api(api)
            try:
                ext.create_custom_resource_definition(doc)
            except ApiException as e:
                if e.status != 409:
                    raise
                current = ext.read_custom_resource_definition(name)
                doc = {
                    **doc,
                    "metadata": {
                        **doc["metadata"],
                        "resourceVersion": current.metadata.resource_version,
                    },
                }
                ext.replace_custom_resource_definition(name, doc)
            deadline = time.monotonic() + timeout
            while True:
                crd = api.sanitize_for_serialization(ext.read_custom_resource_definition(name))
                conditions = {c["type"]: c["status"] for c in crd.get("status", {}).get(
                    "conditions") or []}  # fmt: skip
                if conditions.get("Established") == "True" and all(
                    _serves(api, group, v, plural) for v in versions
                ):
                    return dict(crd)
                if time.monotonic() > deadline:
                    raise RuntimeError(f"CRD {name} not established after {timeout} s: {crd}")
                time.sleep(0.2)


def _serves(api: Any, group: str, version: str, plural: str) -> bool:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    try:
        resources = client.CustomObjectsApi(api).get_api_resources(group, version)
    except ApiException:
        return False
    return any(r.name == plural for r in resources.resources or [])


def _load_manifest(manifest: Mapping[str, Any] | str | os.PathLike[str]) -> dict[str, Any]:
    if isinstance(manifest, Mapping):
        return dict(manifest)
    import yaml

    docs = [d for d in yaml.safe_load_all(Path(manifest).read_text()) if d]
    if len(docs) != 1 or docs[0].get("kind") != "CustomResourceDefinition":
        raise ValueError(f"{manifest} must hold exactly one CustomResourceDefinition")
    return dict(docs[0])
