"""A local HTTP server shaped like the Hugging Face hub's file endpoint (for ``HF_ENDPOINT``).

It answers ``HEAD`` and ``GET /{repo}/resolve/{revision}/{filename}`` as the
hub does for a file stored with Git LFS: ``ETag`` and ``X-Linked-Etag`` carry
the published sha256, ``X-Linked-Size`` the size, ``X-Repo-Commit`` a commit
hash; ``GET`` honours ``Range: bytes=N-`` (206) so clients can resume. A
file can be served with a wrong published sha256, and a transfer can be cut
after some bytes, to test verification and resumption.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class HubFile:
    """One file: its bytes, and how the fake hub misbehaves with it."""

    data: bytes
    published_sha256: str | None = None  # None: the real sha256 of data
    cut_after: int | None = None  # end the first full GET after this many bytes

    @property
    def sha256(self) -> str:
        """What the hub publishes for it."""
        return self.published_sha256 or hashlib.sha256(self.data).hexdigest()


@dataclass
class FakeHub:
    """The files served and the requests seen."""

    files: dict[tuple[str, str], HubFile] = field(default_factory=dict)
    ranges: list[str] = field(default_factory=list)
    url: str = ""

    def add(self, repo: str, filename: str, file: HubFile) -> None:
        """Serve ``file`` as ``repo``'s ``filename``."""
        self.files[(repo, filename)] = file


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _file(self) -> HubFile | None:
            match = re.match(r"^/(.+?/.+?)/resolve/[^/]+/(.+)$", self.path.split("?")[0])
            if not match:
                return None
            return hub.files.get((match.group(1), match.group(2)))

        def _headers(self, file: HubFile, status: int, length: int, start: int = 0) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(length))
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", f'"{file.sha256}"')
            self.send_header("X-Linked-Etag", f'"{file.sha256}"')
            self.send_header("X-Linked-Size", str(len(file.data)))
            self.send_header("X-Repo-Commit", COMMIT)
            if status == 206:
                end = start + length - 1
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(file.data)}")
            self.end_headers()

        def do_HEAD(self) -> None:
            file = self._file()
            if file is None:
                self.send_error(404)
                return
            self._headers(file, 200, len(file.data))

        def do_GET(self) -> None:
            file = self._file()
            if file is None:
                self.send_error(404)
                return
            wanted = self.headers.get("Range")
            start = 0
            if wanted:
                hub.ranges.append(wanted)
                start = int(re.match(r"bytes=(\d+)-", wanted).group(1))  # type: ignore[union-attr]
            body = file.data[start:]
            self._headers(file, 206 if wanted else 200, len(body), start)
            if file.cut_after is not None and not wanted:
                self.wfile.write(body[: file.cut_after])
                self.wfile.flush()
                file.cut_after = None  # only the first transfer is cut
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


@contextmanager
def running_hub() -> Iterator[FakeHub]:
    """A fake hub on a free loopback port, for the duration of the block."""
    hub = FakeHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
