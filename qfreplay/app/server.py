"""Serving the app with Panel's Bokeh server: local assets only, 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Callable, Optional

from ..errors import QfreplayError
from .live import LiveSession

LOCAL_ADDRESSES = ("127.0.0.1", "localhost", "::1")


def serve_app(results_dir: str | Path | None = None, *, live: Optional[LiveSession] = None, port: int = 8503,
              address: str = "127.0.0.1", show: bool = False, refresh_s: Optional[float] = None,
              threaded: bool = False, on_ready: Optional[Callable[[str], None]] = None,
              view: Optional[Callable[[], object]] = None):
    """Serve the report (or, with ``live``, the live dashboard) at ``http://address:port/``.

    The results folder is checked before the server starts (one clear error if it is not one).
    By default (the CLI) this blocks until Ctrl-C and then stops the server cleanly; with
    ``threaded`` the server runs in a background thread and the returned thread's ``stop()`` ends
    it (what ``qfreplay live`` and the tests use). ``on_ready`` receives the URL once it listens.
    ``view`` serves another page instead of the report (the Sweep view of a sweep folder).

    Every JS/CSS asset is served by this server itself (no CDN), so the app works offline.
    """
    from .source import ResultsSource

    folder = results_dir if results_dir is not None else getattr(live, "results_dir", None)
    if folder is None:
        raise QfreplayError("serve_app needs a results folder (or a live session with results_dir)")
    if view is None:
        if live is None:
            source = ResultsSource(folder)
            if source.instruments:  # the first tab draws the first instrument's book
                source.preload_book(source.instruments[0])
        else:  # the session may not have written its first results yet
            source = ResultsSource(folder, getattr(live, "data_dir", None), wait=True)

    import panel as pn

    from .dashboard import build_app, warm_up_engine

    def on_load() -> None:  # after the first page is on screen: load the engine for instant re-runs
        if live is None:
            threading.Thread(target=warm_up_engine, name="qfreplay-warm-up", daemon=True).start()

    def report_page():
        return build_app(source, live=live, refresh_s=refresh_s, on_load=on_load)

    app = view if view is not None else report_page

    origins = None if address in LOCAL_ADDRESSES else ["*"]
    host = "127.0.0.1" if address in ("0.0.0.0", "::") else address
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}/"
    title = f"qfreplay {'live' if live is not None else 'report'}"
    kwargs = dict(port=port, address=address, show=False, title=title, websocket_origin=origins,
                  admin=False, verbose=False)
    _check_port(address, port)
    if threaded:
        server = pn.serve(app, threaded=True, start=True, **kwargs)
        _wait_listening(server, host, port)
        if on_ready:
            on_ready(url)
        return server
    try:
        server = pn.serve(app, threaded=False, start=False, **kwargs)
    except OSError as exc:
        raise QfreplayError(f"cannot listen on {address}:{port}: {exc.strerror or exc}") from None
    server.start()
    if on_ready:
        on_ready(url)
    if show:
        server.io_loop.add_callback(server.show, "/")
    try:
        server.io_loop.start()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        server.io_loop.close(all_fds=False)
    return server


def _check_port(address: str, port: int) -> None:
    """Fail early, with one line, when the port cannot be bound."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError as exc:
            raise QfreplayError(f"cannot listen on {address}:{port}: {exc.strerror or exc}") from None


def _wait_listening(thread, host: str, port: int, timeout: float = 30.0) -> None:
    """Wait until a threaded server accepts connections on ``host:port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if not thread.is_alive():
                raise QfreplayError(f"the app server on port {port} stopped while starting") from None
            time.sleep(0.05)
    raise QfreplayError(f"the app server did not listen on port {port} within {timeout:.0f} s")
