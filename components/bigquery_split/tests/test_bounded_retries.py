"""A BigQuery that keeps answering 5xx fails the step in bounded time, every retry logged
(the client library alone retries such answers silently for 600 s); a bad location is
refused before anything is sent."""

from __future__ import annotations

import http.server
import threading
import time

import pytest

from kfpkit.components.bigquery_split import runner
from kfpkit.components.bigquery_split.runner import SplitRequest, SplitRunner


class _Always500(http.server.BaseHTTPRequestHandler):
    calls = 0

    def _answer(self) -> None:
        type(self).calls += 1
        body = b'{"error": {"code": 500, "message": "backend broken", "errors": []}}'
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def broken_bigquery():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Always500)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def request(endpoint: str, tmp_path, **overrides) -> SplitRequest:
    fields = dict(
        source_table="kfpkit-test.d.src",
        key_columns=["id"],
        split_ratios={"train": 0.8, "test": 0.2},
        destination_dataset="d",
        project="kfpkit-test",
        bigquery_endpoint=endpoint,
        export_format="none",
    )
    return SplitRequest(**{**fields, **overrides})


def test_persistent_5xx_fails_in_bounded_time_with_each_retry_logged(
    broken_bigquery, tmp_path, monkeypatch, caplog
):
    short = runner.api_retry.Retry(predicate=runner.is_transient, initial=0.1, maximum=0.2,
                                   timeout=1.0, on_error=runner._log_retry)  # fmt: skip
    monkeypatch.setattr(runner, "API_RETRY", short)
    start = time.monotonic()
    with pytest.raises(Exception, match="backend broken"):
        SplitRunner(request(broken_bigquery, tmp_path)).run()
    elapsed = time.monotonic() - start
    assert elapsed < 10, elapsed  # the bound (1 s here), not the library's 600 s
    assert _Always500.calls >= 3
    assert caplog.text.count("the client retries") == _Always500.calls  # each one logged


def test_the_default_library_retry_is_bounded():
    assert runner.API_RETRY._timeout == runner.API_RETRY_SECONDS <= 60


@pytest.mark.parametrize("location", ["", " ", "us central1", "US;DROP", None])
def test_bad_location_is_refused_before_any_call(location, tmp_path):
    with pytest.raises(ValueError, match="location"):
        SplitRunner(request("http://127.0.0.1:9", tmp_path, location=location))


@pytest.mark.parametrize("location", ["US", "EU", "us-central1", "northamerica-northeast1"])
def test_real_locations_pass(location, tmp_path):
    SplitRunner(request("http://127.0.0.1:9", tmp_path, location=location))
