"""Submit and schedule compiled pipelines on Kubeflow Pipelines and Vertex AI Pipelines.

``kfpkit.submit.kubeflow`` (kfp.Client) and ``kfpkit.submit.vertex`` (google-cloud-aiplatform,
the ``vertex`` extra, imported only when used) on the host; inside steps, whose images hold
neither, ``kfpkit.submit.kubeflow_rest`` and ``kfpkit.submit.vertex_rest`` (plain REST).
Everything a user gives (the compiled file,
the parameters, the cron) is checked by ``kfpkit.submit.pipeline_spec`` and ``kfpkit.cron`` before a
service is called, and the service is reached once cheaply before anything is created.
"""

from __future__ import annotations

import socket
import ssl
from urllib.parse import urlsplit

# Total deadline of one command's calls to a service (kfpkit submit / schedule / runs).
DEFAULT_TIMEOUT = 120.0


def check_reachable(url: str, what: str, timeout: float = 5.0) -> None:
    """RuntimeError naming ``url`` when nothing answers a TCP connection there, or, for an
    https URL (a bare host:port too), when it does not speak TLS: the SDKs retry their GETs
    on such errors for minutes (Vertex AI Experiments' first calls are GETs)."""
    parts = urlsplit(url if "://" in url else f"https://{url}")
    host = parts.hostname or ""
    port = parts.port or (80 if parts.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=timeout) as connection:
            if parts.scheme == "https":
                context = ssl.create_default_context()
                context.check_hostname = False  # only whether TLS is spoken; the SDK verifies
                context.verify_mode = ssl.CERT_NONE
                with context.wrap_socket(connection, server_hostname=host):
                    pass
    except OSError as e:  # ssl.SSLError is one
        raise RuntimeError(f"cannot reach {what} at {url}: {e}") from None
