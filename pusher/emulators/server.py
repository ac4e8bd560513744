"""Run an ASGI emulator app with uvicorn, in the foreground (CLI) or a background thread (tests)."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from typing import Iterator


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_forever(app, host: str, port: int) -> None:
    import uvicorn  # imported here so `pusher sync` does not pay for the server at start-up

    uvicorn.run(app, host=host, port=port, log_level="warning")


@contextmanager
def running(app, host: str = "127.0.0.1", port: int | None = None, ssl_certfile: str | None = None) -> Iterator[str]:
    """Serve `app` on loopback in a thread; yields its base URL and stops it afterwards.
    `ssl_certfile` (a PEM with key and chain) serves HTTPS, for clients that only speak HTTPS."""
    import uvicorn

    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", ssl_certfile=ssl_certfile))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"emulator did not start on {host}:{port}")
        time.sleep(0.02)
    try:
        yield f"{'https' if ssl_certfile else 'http'}://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
