"""``tune dashboard``: optuna-dashboard on the study database, in this process.

It binds to 127.0.0.1 unless told otherwise: the dashboard can change studies (notes, trial
states) and has no login.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from tuner.errors import TunerError
from tuner.study.storage import open_storage

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def make_server(storage_url: str, host: str = "127.0.0.1", port: int = 8080) -> WSGIServer:
    """A threaded WSGI server for optuna-dashboard on ``storage_url``, bound but not serving
    (port 0 picks a free port: read it from ``server.server_port``)."""
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    try:
        from optuna_dashboard._app import create_app
    except ImportError:
        raise TunerError(
            "the dashboard needs optuna-dashboard: pip install 'tuner[dashboard]'"
        ) from None

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per request would bury the address

    if ":" in host:
        import socket

        Server.address_family = socket.AF_INET6
    app = create_app(open_storage(storage_url, heartbeat=False))
    try:
        return make_server(host, port, app, server_class=Server, handler_class=QuietHandler)
    except OSError as exc:
        raise TunerError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}): pick another --port"
        ) from None


def address(server: WSGIServer) -> str:
    host = str(server.server_address[0])
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{server.server_port}/dashboard"


def serve(server: WSGIServer) -> None:
    """Serve until Ctrl-C, then close the socket."""
    try:
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
    finally:
        server.server_close()
