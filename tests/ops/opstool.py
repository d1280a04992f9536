"""Running modelmon-ops as a user runs it, and a recorder standing in for GitHub's API (which
cannot be reached here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from local_stack.pods import free_port

BIN_DIR = Path(sys.executable).parent
USER = "user01"
RELEASE = "ops"
NAMESPACE = "kubeflow-user01"
# Made-up values of the Secrets the stack is given: tests check they never show in output.
STACK_WEBHOOK_TOKEN = "s" * 32
STACK_GITHUB_TOKEN = "ghp_" + "g" * 36


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str


def run_ops(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180, cwd: Path | None = None
) -> Ran:
    """modelmon-ops as a user runs it; GITHUB_* from the test's environment never leak in."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "MODELMON_OPS_"))}
    done = subprocess.run(
        [str(BIN_DIR / "modelmon-ops"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**clean, **(env or {})},
        check=False,
        cwd=cwd,
    )
    return Ran(done.returncode, done.stdout, done.stderr)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class GitHubRecorder:
    """Answers like GitHub's workflow-dispatch endpoint (204) and keeps every request."""

    status: int = 204
    requests: list[Recorded] = field(default_factory=list)
    url: str = ""

    def start(self) -> None:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                recorder.requests.append(
                    Recorded(
                        "POST", self.path, dict(self.headers.items()), json.loads(raw or b"null")
                    )
                )
                body = b"" if recorder.status == 204 else b'{"message": "Bad credentials"}'
                self.send_response(recorder.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        port = free_port()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
