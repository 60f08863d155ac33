"""kfpkit.runtime.retry.is_connection_error on the real exception classes each client raises
for a refused, dropped or timed-out connection (most are not the built-in ConnectionError),
and every retry predicate that relies on it."""

from __future__ import annotations

import http.client
import ssl
import urllib.error

import aiohttp
import google.auth.exceptions
import pytest
import requests
import urllib3
from google.api_core import exceptions as gexc

from kfpkit.components.bigquery_split.runner import is_transient as bigquery_transient
from kfpkit.jobs.kube import is_transient as kube_transient
from kfpkit.runtime.retry import is_connection_error
from kfpkit.submit.kubeflow_rest import _is_transient as kfp_rest_transient

DROPPED = [
    requests.exceptions.ConnectionError("('Connection aborted.', RemoteDisconnected())"),
    requests.exceptions.ReadTimeout("read timed out"),
    requests.exceptions.ChunkedEncodingError("connection broken"),
    urllib3.exceptions.ProtocolError("Connection aborted."),
    urllib3.exceptions.ReadTimeoutError(None, "/", "read timed out"),  # type: ignore[arg-type]
    urllib3.exceptions.MaxRetryError(
        None, "/", urllib3.exceptions.NewConnectionError(None, "refused")  # type: ignore[arg-type]
    ),
    google.auth.exceptions.TransportError("connection refused"),
    aiohttp.ServerDisconnectedError(),
    http.client.RemoteDisconnected("closed"),
    http.client.IncompleteRead(b"partial"),
    urllib.error.URLError(ConnectionRefusedError(111, "refused")),
    urllib.error.URLError(TimeoutError("timed out")),
    ConnectionResetError(104, "reset"),
    TimeoutError("timed out"),
]
NOT_CONNECTION = [
    requests.exceptions.SSLError("certificate verify failed"),
    urllib3.exceptions.MaxRetryError(
        None, "/", urllib3.exceptions.SSLError("bad certificate")  # type: ignore[arg-type]
    ),
    urllib.error.URLError(ssl.SSLCertVerificationError("self-signed")),
    urllib.error.HTTPError("http://x", 404, "not found", {}, None),  # type: ignore[arg-type]
    requests.exceptions.HTTPError("400"),
    ValueError("bad input"),
    OSError(28, "no space left on device"),
]


@pytest.mark.parametrize("error", DROPPED, ids=lambda e: type(e).__name__)
def test_dropped_connections_are_transient_everywhere(error):
    assert is_connection_error(error)
    assert bigquery_transient(error)
    assert kube_transient(error)
    assert kfp_rest_transient(error)


@pytest.mark.parametrize("error", NOT_CONNECTION, ids=lambda e: type(e).__name__)
def test_tls_http_and_user_errors_are_not(error):
    assert not is_connection_error(error)
    assert not bigquery_transient(error)
    assert not kube_transient(error)


def test_bigquery_keeps_its_own_transient_answers():
    assert bigquery_transient(gexc.ServiceUnavailable("down"))
    assert bigquery_transient(gexc.BadRequest("x", errors=[{"reason": "backendError"}]))
    assert not bigquery_transient(gexc.BadRequest("syntax"))
