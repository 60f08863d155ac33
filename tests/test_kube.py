"""The shared Kubernetes helper against a real kube-apiserver + etcd (the test plays the
controller by writing status through the /status subresource), and the generic wait loop."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid

import pytest

from kfpkit.jobs import kube, wait
from kfpkit.runtime.executor import Cancelled, _raise_cancelled

GROUP, VERSION, PLURAL, KIND = "tests.kfpkit.dev", "v1", "widgets", "Widget"
WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{PLURAL}.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": PLURAL, "singular": "widget", "kind": KIND},
        "versions": [
            {
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            }
        ],
    },
}


# -- names ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["a", "katib-tune-0", "x" * 63, "0abc"])
def test_valid_names(name):
    assert kube.check_name(name) == name


@pytest.mark.parametrize("name", ["", "Upper", "-lead", "trail-", "under_score", "dot.ted",
                                  "x" * 64, None, 5])  # fmt: skip
def test_invalid_names_name_the_value(name):
    with pytest.raises(ValueError, match="namespace") as err:
        kube.check_name(name, "namespace")
    assert repr(name)[:20] in str(err.value)


def test_object_name_is_deterministic_and_fits():
    identity = {"inputs": {"a": 1}, "outputs": ["/run/1/task/out"]}
    name = kube.object_name("katib-tune", identity)
    assert name == kube.object_name("katib-tune", dict(reversed(list(identity.items()))))
    assert name != kube.object_name("katib-tune", {**identity, "outputs": ["/run/2/task/out"]})
    long = kube.object_name("p" * 100, identity, max_length=40)
    assert len(long) == 40 and long.endswith(name[-12:])
    kube.check_name(long)


@pytest.mark.parametrize("prefix", ["Bad", "-x", "", "a_b"])
def test_object_name_refuses_bad_prefix(prefix):
    with pytest.raises(ValueError, match="prefix"):
        kube.object_name(prefix, {})


# -- the generic wait loop ----------------------------------------------------------------
class _Clock:
    """Deterministic time for the wait loop: sleeping advances it."""

    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _states(*states: wait.Progress):
    seq = iter(states)
    return lambda: next(seq)


def test_wait_for_returns_when_done_and_reports_failure_reason():
    clock = _Clock()
    fetch = _states(wait.Progress.pending("queued"), wait.Progress.done())
    result = wait.wait_for(fetch, lambda p: p, what="job", poll_interval=5, timeout=60,
                             clock=lambda: clock.now, sleep=clock.sleep)  # fmt: skip
    assert result.state == "done" and clock.now == 5
    fetch = _states(wait.Progress.pending(), wait.Progress.failed("OOMKilled in trial 3"))
    with pytest.raises(wait.RemoteJobFailed, match="job failed: OOMKilled in trial 3"):
        wait.wait_for(fetch, lambda p: p, what="job", poll_interval=1, timeout=60,
                        clock=lambda: clock.now, sleep=clock.sleep)  # fmt: skip


def test_wait_for_times_out_and_cancels():
    clock, cancelled = _Clock(), []
    with pytest.raises(wait.RemoteJobTimeout, match="within 10 s"):
        wait.wait_for(lambda: wait.Progress.pending("running"), lambda p: p, what="job",
                        poll_interval=3, timeout=10, cancel=lambda: cancelled.append(1),
                        clock=lambda: clock.now, sleep=clock.sleep)  # fmt: skip
    assert cancelled == [1] and clock.now == 10


@pytest.mark.parametrize("poll, timeout", [(0, 1), (1, 0), (-1, 5)])
def test_wait_settings_refused(poll, timeout):
    with pytest.raises(ValueError, match="poll_interval|timeout"):
        wait.check_wait_settings(poll, timeout)


# -- transient errors -------------------------------------------------------------------
def test_connection_refused_is_transient_and_retried():
    from kubernetes import client

    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{port}"
    configuration.retries = False
    api = client.CoreV1Api(client.ApiClient(configuration))
    calls = []

    def list_namespaces():
        calls.append(1)
        return api.list_namespace(_request_timeout=2)

    with pytest.raises(Exception) as err:
        kube.call(list_namespaces, "list namespaces", attempts=3, initial_delay=0.01)
    assert kube.is_transient(err.value) and len(calls) == 3


def test_client_errors_are_not_transient():
    from kubernetes.client.exceptions import ApiException

    assert not kube.is_transient(ApiException(status=404))
    assert not kube.is_transient(ApiException(status=422))
    assert kube.is_transient(ApiException(status=503))
    assert kube.is_transient(ApiException(status=429))


# -- against the real API server ----------------------------------------------------------
@pytest.fixture(scope="module")
def widgets(kube_server):
    kube_server.install_crd(WIDGET_CRD)
    kube_server.create_namespace("kube-helper")
    return kube.CustomObjects(kube_server.api_client(), GROUP, VERSION, PLURAL, KIND)


def _widget(name: str) -> dict:
    return {"metadata": {"name": name}, "spec": {"size": 3}}


def _set_status(widgets: kube.CustomObjects, name: str, status: dict, after: float = 0.0):
    """Plays the controller: writes status through the /status subresource."""

    def write() -> None:
        time.sleep(after)
        widgets.api.patch_namespaced_custom_object_status(
            GROUP, VERSION, "kube-helper", PLURAL, name, {"status": status}
        )

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def _check(obj: dict) -> wait.Progress:
    if kube.condition_true(obj, "Succeeded"):
        return wait.Progress.done()
    failed = kube.condition(obj, "Failed")
    if failed and failed.get("status") == "True":
        return wait.Progress.failed(failed.get("message", ""))
    return wait.Progress.pending("running")


def _name() -> str:
    return f"w-{uuid.uuid4().hex[:8]}"


def test_create_then_resume_is_the_same_object(widgets):
    name = _name()
    first, resumed = widgets.create_or_resume("kube-helper", _widget(name), owner="step1")
    assert not resumed and first["metadata"]["labels"][kube.OWNER_LABEL] == "step1"
    again, resumed = widgets.create_or_resume("kube-helper", _widget(name), owner="step1")
    assert resumed and again["metadata"]["uid"] == first["metadata"]["uid"]
    listed = widgets.api.list_namespaced_custom_object(GROUP, VERSION, "kube-helper", PLURAL)
    assert [i["metadata"]["name"] for i in listed["items"]].count(name) == 1


def test_an_object_of_someone_else_is_not_resumed(widgets):
    name = _name()
    widgets.create_or_resume("kube-helper", _widget(name), owner="step1")
    with pytest.raises(RuntimeError, match="not created by this step"):
        widgets.create_or_resume("kube-helper", _widget(name), owner="step2")


def test_invalid_names_refused_before_any_call(widgets):
    with pytest.raises(ValueError, match="namespace 'Bad_NS'"):
        widgets.create_or_resume("Bad_NS", _widget("ok"), owner="s")
    with pytest.raises(ValueError, match="Widget name 'no_way'"):
        widgets.create_or_resume("kube-helper", _widget("no_way"), owner="s")


def test_status_is_written_only_through_the_subresource(widgets):
    name = _name()
    obj, _ = widgets.create_or_resume(
        "kube-helper", {**_widget(name), "status": {"conditions": [{"type": "Succeeded",
                                                                    "status": "True"}]}},
        owner="s",
    )  # fmt: skip
    assert "status" not in obj  # a create cannot set status: only the controller can


def test_wait_succeeds_when_the_controller_says_so(widgets):
    name = _name()
    widgets.create_or_resume("kube-helper", _widget(name), owner="s")
    _set_status(widgets, name, {"conditions": [{"type": "Succeeded", "status": "True"}]}, 0.5)
    done = widgets.wait("kube-helper", name, _check, poll_interval=0.2, timeout=20)
    assert kube.condition_true(done, "Succeeded")


def test_wait_fails_with_the_service_reason(widgets):
    name = _name()
    widgets.create_or_resume("kube-helper", _widget(name), owner="s")
    status = {"conditions": [{"type": "Failed", "status": "True", "message": "quota exceeded"}]}
    _set_status(widgets, name, status, 0.3)
    with pytest.raises(RuntimeError, match="quota exceeded"):
        widgets.wait("kube-helper", name, _check, poll_interval=0.2, timeout=20)


def test_timeout_deletes_the_object(widgets):
    name = _name()
    widgets.create_or_resume("kube-helper", _widget(name), owner="s")
    with pytest.raises(wait.RemoteJobTimeout):
        widgets.wait("kube-helper", name, _check, poll_interval=0.2, timeout=1)
    assert widgets.find("kube-helper", name) is None


def test_sigterm_cancels_and_deletes(widgets):
    name = _name()
    widgets.create_or_resume("kube-helper", _widget(name), owner="s")
    previous = signal.signal(signal.SIGTERM, _raise_cancelled)
    killer = threading.Timer(0.8, os.kill, (os.getpid(), signal.SIGTERM))
    killer.start()
    try:
        with pytest.raises(Cancelled):
            widgets.wait("kube-helper", name, _check, poll_interval=0.2, timeout=30)
    finally:
        killer.cancel()
        signal.signal(signal.SIGTERM, previous)
    assert widgets.find("kube-helper", name) is None
    # a restart after the cancel creates it anew
    _, resumed = widgets.create_or_resume("kube-helper", _widget(name), owner="s")
    assert not resumed


def test_deleted_while_waiting_fails(widgets):
    name = _name()
    widgets.create_or_resume("kube-helper", _widget(name), owner="s")
    threading.Timer(0.5, widgets.delete, ("kube-helper", name)).start()
    with pytest.raises(RuntimeError, match="was deleted"):
        widgets.wait("kube-helper", name, _check, poll_interval=0.2, timeout=20)
