"""A local stand-in for the Lambda Runtime API, so `python -m awslambdaric` runs as it does inside Lambda.

It hands out the queued events on `GET .../invocation/next` and records what the
client posts back; the real service does the same over the same paths.
"""

from __future__ import annotations

import json
import queue
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/2018-06-01/runtime"


class RuntimeAPI:
    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.pending: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        for event in events:
            self.pending.put((str(uuid.uuid4()), event))
        self.results: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                request_id, event = api.pending.get()  # blocks, as the real API does between invocations
                body = json.dumps(event).encode()
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
                self.send_header("Lambda-Runtime-Deadline-Ms", "9999999999999")
                self.send_header(
                    "Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:eu-west-1:1:function:t"
                )
                self.send_header("Lambda-Runtime-Trace-Id", f"Root=1-00000000-{request_id[:24]};Sampled=0")
                self.send_header("Lambda-Runtime-Invocation-Id", request_id)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                kind = self.path.rsplit("/", 1)[-1]  # response, error, or init/error
                api.results.put((kind, json.loads(body or b"null")))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler
