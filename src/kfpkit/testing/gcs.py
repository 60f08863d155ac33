"""A read-only Cloud Storage stand-in on 127.0.0.1: a local folder's files as gs:// objects.

Enough of the JSON API for pyarrow's GcsFileSystem (google-cloud-cpp) to list, stat and read
objects: object metadata, listing by prefix, media downloads with byte ranges, and an OAuth
token endpoint. ``<root>/<bucket>/<name>`` is object ``gs://<bucket>/<name>``. Objects named
in ``forbidden`` answer 403, as to credentials without read access.

The server runs in a child process: pyarrow holds the GIL through some of its reads, so a
server thread in the reading process would never answer.

A client finds it through :meth:`GcsStandIn.environment`: ``CLOUD_STORAGE_EMULATOR_ENDPOINT``
(google-cloud-cpp's emulator endpoint), and ``GOOGLE_APPLICATION_CREDENTIALS`` naming
authorized-user credentials whose ``token_uri`` is this server, so no Google host is asked.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from kfpkit.testing.http import send_json

_OBJECT = re.compile(r"^(?:/download)?/storage/v1/b/([^/]+)/o/(.+)$")
_LIST = re.compile(r"^/storage/v1/b/([^/]+)/o$")
_BUCKET = re.compile(r"^/storage/v1/b/([^/]+)$")
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


class GcsStandIn:
    """Serves ``root`` from construction until :meth:`close` (or a ``with`` block's end)."""

    def __init__(self, root: Path, forbidden: Iterable[str] = ()) -> None:
        """``forbidden``: "bucket/name" of objects that answer 403."""
        command = [sys.executable, "-m", __name__, str(root), *forbidden]
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        self.url = self._process.stdout.readline().strip()
        if not self.url:
            self._process.wait(10)
            raise RuntimeError(f"the GCS stand-in did not start (exit {self._process.returncode})")

    def environment(self, folder: Path) -> dict[str, str]:
        """Variables that point google-cloud-cpp here (credentials written to ``folder``)."""
        credentials = folder / "gcs-stand-in-credentials.json"
        credentials.write_text(json.dumps({
            "type": "authorized_user", "client_id": "stand-in", "client_secret": "stand-in",
            "refresh_token": "stand-in", "token_uri": f"{self.url}/token",
        }))  # fmt: skip
        return {"CLOUD_STORAGE_EMULATOR_ENDPOINT": self.url,
                "GOOGLE_APPLICATION_CREDENTIALS": str(credentials)}  # fmt: skip

    def close(self) -> None:
        self._process.terminate()
        self._process.wait(10)

    def __enter__(self) -> GcsStandIn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Server:
    """The stand-in's HTTP side (in the child process)."""

    def __init__(self, root: Path, forbidden: set[str]) -> None:
        self.root, self.forbidden = root.resolve(), forbidden
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server._handle(self)

            do_POST = do_GET

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        if length:
            handler.rfile.read(length)
        split = urlsplit(handler.path)
        path, query = unquote(split.path), {k: v[0] for k, v in parse_qs(split.query).items()}
        if path == "/token":
            return send_json(handler, 200, {"access_token": "stand-in", "expires_in": 3600,
                                             "token_type": "Bearer"})  # fmt: skip
        if m := _LIST.match(path):
            return send_json(handler, 200, self._list(m[1], query))
        if m := _OBJECT.match(path):
            return self._object(handler, m[1], m[2], media=query.get("alt") == "media")
        if (m := _BUCKET.match(path)) and (self.root / m[1]).is_dir():
            return send_json(handler, 200, {"kind": "storage#bucket", "name": m[1], "id": m[1]})
        return send_json(handler, 404, _error(404, f"no such thing: {path}"))

    def _file(self, bucket: str, name: str) -> Path | None:
        path = self.root / bucket / name
        return path if path.is_file() and self.root in path.resolve().parents else None

    def _metadata(self, bucket: str, name: str, path: Path) -> dict[str, Any]:
        when = "2026-01-01T00:00:00.000Z"
        link = f"{self.url}/storage/v1/b/{bucket}/o/{quote(name, safe='')}"
        return {"kind": "storage#object", "id": f"{bucket}/{name}/1", "name": name,
                "bucket": bucket, "generation": "1", "metageneration": "1",
                "size": str(path.stat().st_size), "contentType": "application/octet-stream",
                "updated": when, "timeCreated": when, "selfLink": link}  # fmt: skip

    def _list(self, bucket: str, query: dict[str, str]) -> dict[str, Any]:
        prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
        items, prefixes = [], set()
        base = self.root / bucket
        for path in sorted(p for p in base.rglob("*") if p.is_file()):
            name = path.relative_to(base).as_posix()
            if not name.startswith(prefix):
                continue
            rest = name[len(prefix) :]
            if delimiter and delimiter in rest:
                prefixes.add(prefix + rest.split(delimiter)[0] + delimiter)
            else:
                items.append(self._metadata(bucket, name, path))
        return {"kind": "storage#objects", "items": items, "prefixes": sorted(prefixes)}

    def _object(self, handler: BaseHTTPRequestHandler, bucket: str, name: str,
                media: bool) -> None:  # fmt: skip
        if f"{bucket}/{name}" in self.forbidden:
            return send_json(handler, 403, _error(403, f"no read access to {bucket}/{name}"))
        path = self._file(bucket, name)
        if path is None:
            return send_json(handler, 404, _error(404, f"no object {bucket}/{name}"))
        if not media:
            return send_json(handler, 200, self._metadata(bucket, name, path))
        data = path.read_bytes()
        status, first = 200, 0
        if m := _RANGE.match(handler.headers.get("Range", "")):
            first = int(m[1])
            last = min(int(m[2]) if m[2] else len(data) - 1, len(data) - 1)
            data, status = data[first : last + 1], 206
        handler.send_response(status)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("x-goog-generation", "1")
        handler.send_header("x-goog-metageneration", "1")
        if status == 206:
            size = path.stat().st_size
            handler.send_header("Content-Range", f"bytes {first}-{first + len(data) - 1}/{size}")
        handler.end_headers()
        handler.wfile.write(data)
        return None


def _error(code: int, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "errors": [{"message": message}]}}


if __name__ == "__main__":
    served = _Server(Path(sys.argv[1]), set(sys.argv[2:]))
    print(served.url, flush=True)
    served.http.serve_forever()
