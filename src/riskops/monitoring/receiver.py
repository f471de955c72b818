"""A local stand-in for Slack's incoming webhooks: prints each message and keeps it as JSON lines.

The embedded defaults point the Slack webhook block here (DESIGN.md section 4), so a demo or a
test sees exactly what Slack would have been sent. Like Slack it takes a JSON body on any path
(``/services/T/B/X``) and answers ``ok``; unlike Slack it accepts any path and keeps everything.

    python -m riskops.monitoring.receiver --port 5055 --out .riskops/slack.jsonl

or, in a test: ``with SlackReceiver(out=path) as receiver: ... receiver.url ... receiver.messages``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO

MAX_BODY_BYTES = 1_000_000  # Slack caps a message far below this; anything bigger is a bug


def _texts(element: Any) -> list[str]:
    """The human-readable strings of a Block Kit element (text objects, fields, elements)."""
    if isinstance(element, str):
        return [element]
    if not isinstance(element, dict):
        return []
    found: list[str] = []
    text = element.get("text")
    if isinstance(text, str):
        found.append(text)
    elif isinstance(text, dict):
        found += _texts(text)
    for key in ("fields", "elements"):
        for child in element.get(key) or []:
            found += _texts(child)
    return found


def _readable(text: str) -> str:
    # "*Label*\nvalue" (a section field) reads better on one line; undo Slack's escapes.
    head, sep, rest = text.partition("\n")
    if sep and len(head) > 2 and head.startswith("*") and head.endswith("*"):
        text = f"{head[1:-1]}:{chr(10) if chr(10) in rest else ' '}{rest}"
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def render_message(payload: dict[str, Any]) -> str:
    """A Slack webhook payload as plain text: the fallback text, then each block's text."""
    lines = [str(payload.get("text", ""))]
    for block in payload.get("blocks") or []:
        if isinstance(block, dict) and block.get("type") == "divider":
            lines.append("-" * 40)
            continue
        lines += [_readable(text) for text in _texts(block) if text != lines[0]]
    return "\n".join(line for line in lines if line)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _answer(self, status: int, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")  # what Slack answers with
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._answer(413, "payload_too_large")
            return
        raw = self.rfile.read(length)
        try:
            payload = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            # Slack's answer to a body it cannot parse; form-encoded `payload=` is not supported.
            self._answer(400, "invalid_payload")
            return
        if not isinstance(payload, dict):
            self._answer(400, "invalid_payload")
            return
        if not payload.get("text") and not payload.get("blocks"):
            self._answer(400, "no_text")
            return
        self.server.record(self.path, payload)
        self._answer(200, "ok")

    def do_GET(self) -> None:
        if self.path == "/health":  # for `riskops status`; Slack itself has no such path
            self._answer(200, "ok")
            return
        self._answer(405, "method_not_allowed: POST a JSON Slack message")

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the messages themselves are printed; access lines would only bury them


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        record: Callable[[str, dict[str, Any]], None],
    ) -> None:
        super().__init__(address, _Handler)
        self.record = record


class SlackReceiver:
    """An HTTP server that receives Slack webhook posts, in a background thread or in front.

    Args:
        host, port: where to listen; port 0 picks a free port (see ``url`` once started).
        out: append each message as one JSON line here (``received_at``, ``path``, ``payload``).
        echo: where to print messages readably; None keeps quiet.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        out: Path | None = None,
        echo: TextIO | None = sys.stdout,
    ) -> None:
        self.out = out
        self.echo = echo
        self.messages: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server = _Server((host, port), self._record)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The webhook URL to give a Slack block (any path is accepted)."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/services/riskops/local/webhook"

    def _record(self, path: str, payload: dict[str, Any]) -> None:
        entry = {
            "received_at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "path": path,
            "payload": payload,
        }
        with self._lock:  # one line at a time in the file and on the screen
            self.messages.append(entry)
            if self.out is not None:
                self.out.parent.mkdir(parents=True, exist_ok=True)
                with self.out.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
            if self.echo is not None:
                rule = "=" * 72
                shown = f"{rule}\nslack {entry['received_at']} {path}\n"
                shown += render_message(payload) + f"\n{rule}\n"
                try:
                    self.echo.write(shown)
                    self.echo.flush()
                except OSError:
                    pass  # stdout went away (a closed pipe): the message is stored all the same

    def start(self) -> SlackReceiver:
        """Serve in a daemon thread; returns self."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="slack-receiver", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted."""
        self._server.serve_forever()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> SlackReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--out", type=Path, default=None, help="append messages as JSON lines")
    args = parser.parse_args(argv)
    receiver = SlackReceiver(host=args.host, port=args.port, out=args.out)
    print(f"slack receiver listening: {receiver.url}", flush=True)
    try:
        receiver.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        receiver.stop()


if __name__ == "__main__":
    main()
