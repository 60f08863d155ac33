"""bigquery_split through a real TCP proxy that drops the BigQuery connection mid-split (the
emulator going away for a moment): the dropped connection is retried, logged, and the split
completes. The client library raises ``requests.exceptions.ConnectionError`` for it, an
``OSError`` that is not the built-in ``ConnectionError``."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from pathlib import Path

import pytest

from kfpkit import demo_data
from kfpkit.components.bigquery_split.runner import SplitRequest, SplitRunner

pytestmark = pytest.mark.emulator
SAMPLE = (
    Path(__file__).resolve().parents[2]
    / "components" / "bigquery_split" / "tests" / "data" / "employment_sample.parquet"
)  # fmt: skip


class DroppingProxy:
    """Forwards 127.0.0.1:<port> to ``target``; when a client sends a request containing
    ``trigger``, it drops every connection (that one mid-request) and, for ``outage``
    seconds, closes each new connection as soon as it is accepted."""

    def __init__(self, target: tuple[str, int], trigger: bytes, outage: float):
        self.target, self.trigger, self.outage = target, trigger, outage
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.down_until = 0.0
        self.triggered = False
        self.dropped = 0
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if time.monotonic() < self.down_until:
                self._drop(client)
                continue
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._open |= {client, upstream}
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _drop(self, sock: socket.socket) -> None:
        self.dropped += 1
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def _pipe(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        try:
            while data := source.recv(65536):
                if from_client and not self.triggered and self.trigger in data:
                    self.triggered = True
                    self.down_until = time.monotonic() + self.outage
                    with self._lock:
                        victims, self._open = set(self._open), set()
                    for sock in victims:
                        self._drop(sock)
                    return
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with self._lock:
                    self._open.discard(sock)
                with contextlib.suppress(OSError):
                    sock.close()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture()
def proxy(emulator):  # type: ignore[no-untyped-def]
    # the query job's insert: dropped while the emulator runs the split's first statement
    found = DroppingProxy(("127.0.0.1", emulator.rest_port), b"/jobs", outage=2.0)
    yield found
    found.close()


def test_a_dropped_connection_mid_split_is_retried_and_the_split_completes(
    proxy, bq, dataset, tmp_path, caplog
):
    table = f"{dataset}.src"
    rows = demo_data.load_into_bigquery(bq, SAMPLE, table)
    project, ds = dataset.split(".")
    request = SplitRequest(
        source_table=table,
        key_columns=["id"],
        split_ratios={"train": 0.8, "test": 0.2},
        destination_dataset=ds,
        project=project,
        bigquery_endpoint=f"http://127.0.0.1:{proxy.port}",
        export_format="none",
    )
    caplog.set_level(logging.WARNING, logger="kfpkit")
    results = SplitRunner(request).run()
    assert proxy.triggered and proxy.dropped >= 1
    assert "ConnectionError" in caplog.text or "Connection aborted" in caplog.text
    assert "retr" in caplog.text  # each retry is logged
    assert sum(r.row_count for r in results) == rows
    for r in results:
        assert bq.get_table(r.table_id).num_rows == r.row_count
