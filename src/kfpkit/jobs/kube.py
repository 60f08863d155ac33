"""The one Kubernetes helper of every cluster backend (Katib Experiments, InferenceServices).

kfp-free; uses the official ``kubernetes`` client. What it gives:

- :func:`check_name`: DNS-1123 label check (names and namespaces), ValueError naming the value.
- :func:`object_name`: a deterministic object name from a prefix and the step's identity.
- :class:`CustomObjects`: create-or-resume a namespaced custom object by that name (a 409
  reads the existing object and resumes it when its owner label says it is ours), get,
  delete, and :meth:`CustomObjects.wait` (poll interval, timeout, cancel on SIGTERM, fail with
  the service's reason) on top of the generic :func:`kfpkit.jobs.wait.wait_for`.

Every API call retries transient errors (429, 5xx, dropped connections) with backoff.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from kfpkit.jobs import wait
from kfpkit.runtime.identity import step_key
from kfpkit.runtime.retry import is_connection_error, retry

_log = logging.getLogger("kfpkit")

# The label that marks an object as created by one kfpkit step (value: the step's key).
OWNER_LABEL = "kfpkit.dev/step"
MAX_NAME_LENGTH = 63
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
_TRANSIENT_STATUS = {429, 500, 502, 503, 504}


def check_name(value: Any, what: str = "name", max_length: int = MAX_NAME_LENGTH) -> str:
    """``value`` if it is a DNS-1123 label (lower-case alphanumerics and '-', starting and
    ending alphanumeric, at most ``max_length`` characters); else ValueError naming it."""
    if not isinstance(value, str) or not _DNS1123_LABEL.match(value):
        raise ValueError(
            f"{what} {value!r} is not a valid Kubernetes name (DNS-1123 label: lower-case "
            "letters, digits and '-', starting and ending with a letter or digit)"
        )
    if len(value) > max_length:
        raise ValueError(f"{what} {value!r} is longer than {max_length} characters")
    return value


def object_name(prefix: str, identity: Any, max_length: int = MAX_NAME_LENGTH) -> str:
    """``<prefix>-<hash of identity>``: the same step gets the same name on every attempt.

    The prefix is cut (never the hash) to fit ``max_length``; ValueError if the prefix is not
    a valid name start.
    """
    key = step_key(identity, 12)
    room = max_length - len(key) - 1
    if room < 1:
        raise ValueError(f"max_length {max_length} leaves no room for a prefix")
    cut = prefix[:room].rstrip("-")
    name = f"{cut}-{key}"
    if not cut or not _DNS1123_LABEL.match(name):
        raise ValueError(
            f"name prefix {prefix!r} does not start a valid Kubernetes name (lower-case "
            "letters, digits and '-', starting with a letter or digit)"
        )
    return name


def is_transient(error: BaseException) -> bool:
    """API errors worth retrying: throttling, 5xx, and connections that failed or dropped."""
    if isinstance(error, ApiException):
        return error.status in _TRANSIENT_STATUS or error.status == 0
    return is_connection_error(error)


def call(fn: Callable[[], Any], what: str, attempts: int = 5, initial_delay: float = 1.0) -> Any:
    """One Kubernetes API call with transient errors retried."""
    return retry(fn, is_transient, attempts=attempts, initial_delay=initial_delay, what=what)


def api_client(kubeconfig: str = "", context: str = "") -> k8s.ApiClient:
    """A client for the cluster the step runs in (in-cluster service account), else the
    kubeconfig (``kubeconfig`` argument, ``$KUBECONFIG`` or ``~/.kube/config``)."""
    if not kubeconfig and os.environ.get("KUBERNETES_SERVICE_HOST"):
        configuration = k8s.Configuration()
        k8s_config.load_incluster_config(client_configuration=configuration)
        return k8s.ApiClient(configuration)
    # $KUBECONFIG read now: the client library reads it once, when it is imported.
    return k8s_config.new_client_from_config(
        config_file=kubeconfig or os.environ.get("KUBECONFIG") or None, context=context or None
    )


def _reason(error: ApiException) -> str:
    body = getattr(error, "body", None) or ""
    return f"{error.status} {error.reason}: {body[:500]}"


class Conflict(RuntimeError):
    """The object changed since it was read (409 on update): read it again and retry."""


class CustomObjects:
    """Namespaced custom objects of one kind (``group/version``, ``plural``)."""

    def __init__(self, api: k8s.ApiClient, group: str, version: str, plural: str, kind: str):
        self.api = k8s.CustomObjectsApi(api)
        self.group, self.version, self.plural, self.kind = group, version, plural, kind

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    def _args(self, namespace: str) -> dict[str, str]:
        return {
            "group": self.group,
            "version": self.version,
            "namespace": namespace,
            "plural": self.plural,
        }

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        return call(
            lambda: self.api.get_namespaced_custom_object(name=name, **self._args(namespace)),
            f"get {self.kind} {namespace}/{name}",
        )

    def find(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return self.get(namespace, name)
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    def delete(self, namespace: str, name: str) -> bool:
        """Deletes the object; what it owns goes with it (background propagation: the object
        goes at once, the garbage collector removes dependents). False when already gone."""
        body = k8s.V1DeleteOptions(propagation_policy="Background")
        try:
            call(
                lambda: self.api.delete_namespaced_custom_object(
                    name=name, body=body, **self._args(namespace)
                ),
                f"delete {self.kind} {namespace}/{name}",
            )
        except ApiException as e:
            if e.status == 404:
                return False
            raise
        _log.info("deleted %s %s/%s", self.kind, namespace, name)
        return True

    def replace(self, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Replaces an existing object (spec and metadata; status is the controller's).

        ``body`` carries the ``metadata.resourceVersion`` it was read at: a change made by
        someone else since then (a controller writing status, too) is refused with
        :class:`Conflict` instead of being overwritten. Other 4xx answers are RuntimeError
        with the server's message.
        """
        check_name(namespace, "namespace")
        name = check_name(body.get("metadata", {}).get("name"), f"{self.kind} name")
        doc = {**body, "apiVersion": self.api_version, "kind": self.kind}
        try:
            replaced = call(
                lambda: self.api.replace_namespaced_custom_object(
                    name=name, body=doc, **self._args(namespace)
                ),
                f"replace {self.kind} {namespace}/{name}",
            )
        except ApiException as e:
            if e.status == 409:
                raise Conflict(f"{self.kind} {namespace}/{name} changed since it was read") from e
            if e.status in (400, 403, 404, 422):
                raise RuntimeError(
                    f"the API server refused to update {self.kind} {namespace}/{name}: {_reason(e)}"
                ) from e
            raise
        _log.info("updated %s %s/%s", self.kind, namespace, name)
        return replaced

    def create_or_resume(
        self,
        namespace: str,
        body: Mapping[str, Any],
        owner: str,
        gone_timeout: float = 120.0,
        poll_interval: float = 1.0,
    ) -> tuple[dict[str, Any], bool]:
        """Creates ``body`` (its ``metadata.name`` deterministic), labelled as ``owner``'s.

        Returns (object, resumed). When the name exists already (409) and carries our owner
        label, that object is resumed: a restarted step waits on the object its previous
        attempt created. One being deleted (a cancelled attempt) is waited out, then created
        anew. An object of that name without our label is never touched: RuntimeError.
        """
        check_name(namespace, "namespace")
        name = check_name(body.get("metadata", {}).get("name"), f"{self.kind} name")
        check_name(owner, "owner key")
        doc = dict(body)
        meta = dict(doc.get("metadata", {}))
        meta["labels"] = {**meta.get("labels", {}), OWNER_LABEL: owner}
        meta.pop("namespace", None)
        doc.update(apiVersion=self.api_version, kind=self.kind, metadata=meta)
        deadline = time.monotonic() + gone_timeout
        while True:
            try:
                created = call(
                    lambda: self.api.create_namespaced_custom_object(
                        body=doc, **self._args(namespace)
                    ),
                    f"create {self.kind} {namespace}/{name}",
                )
                _log.info("created %s %s/%s", self.kind, namespace, name)
                return created, False
            except ApiException as e:
                if e.status != 409:
                    if e.status in (400, 403, 404, 422):
                        raise RuntimeError(
                            f"the API server refused {self.kind} {namespace}/{name}: {_reason(e)}"
                        ) from e
                    raise
            existing = self.find(namespace, name)
            if existing is None:
                continue  # deleted between our create and our read: create again
            labels = existing.get("metadata", {}).get("labels") or {}
            if labels.get(OWNER_LABEL) != owner:
                raise RuntimeError(
                    f"{self.kind} {namespace}/{name} exists but was not created by this step "
                    f"(label {OWNER_LABEL}={labels.get(OWNER_LABEL)!r}, expected {owner!r}); "
                    "delete it or change the step's inputs"
                )
            if not existing.get("metadata", {}).get("deletionTimestamp"):
                _log.info("resuming %s %s/%s", self.kind, namespace, name)
                return existing, True
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.kind} {namespace}/{name} is still being deleted after "
                    f"{gone_timeout:g} s"
                )
            time.sleep(poll_interval)

    def wait(
        self,
        namespace: str,
        name: str,
        check: Callable[[dict[str, Any]], wait.Progress],
        *,
        poll_interval: float,
        timeout: float,
        cancel: Callable[[], None] | None = None,
        cancel_on_timeout: bool = True,
    ) -> dict[str, Any]:
        """Polls the object until ``check`` says done (returns it) or failed (RuntimeError with
        the reason). On SIGTERM, and on timeout, the object is deleted (or ``cancel`` called)."""
        what = f"{self.kind} {namespace}/{name}"

        def fetch() -> dict[str, Any]:
            obj = self.find(namespace, name)
            if obj is None:
                raise RuntimeError(f"{what} was deleted while the step waited on it")
            return obj

        return wait.wait_for(
            fetch,
            check,
            what=what,
            poll_interval=poll_interval,
            timeout=timeout,
            cancel=cancel or (lambda: None if self.delete(namespace, name) else None),
            cancel_on_timeout=cancel_on_timeout,
        )


def condition(obj: Mapping[str, Any], kind: str) -> dict[str, Any] | None:
    """The status condition of type ``kind`` (the Kubernetes convention), if present."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


def condition_true(obj: Mapping[str, Any], kind: str) -> bool:
    cond = condition(obj, kind)
    return cond is not None and str(cond.get("status")) == "True"
