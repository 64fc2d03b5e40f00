"""The Panel app: the report over a results folder and the live dashboard, one code base.

Reads results (SPEC 6) and the dataset (SPEC 2) only; never imports the recorder.
"""

from .live import LiveSession

__all__ = ["LiveSession", "build_app", "serve_app"]


def __getattr__(name: str):  # Panel is imported only when the app is actually built
    if name == "build_app":
        from .dashboard import build_app

        return build_app
    if name == "serve_app":
        from .server import serve_app

        return serve_app
    raise AttributeError(name)
