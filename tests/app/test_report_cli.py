"""``qfreplay report``: help, one-line errors, serving offline, Ctrl-C."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from click.testing import CliRunner

from qfreplay.cli import cli
from tests.app.market import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_help_names_the_options_and_the_tabs():
    result = CliRunner().invoke(cli, ["report", "--help"])
    assert result.exit_code == 0
    for text in ("RESULTS_DIR", "--port", "8503", "--address", "127.0.0.1", "--show", "Order Book", "Arbitrage", "Ctrl-C"):
        assert text in result.output


def test_missing_folder_is_one_clear_line(tmp_path):
    result = CliRunner().invoke(cli, ["report", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"error: results folder {str(tmp_path / 'nope')!r} does not exist "
                                                  "(run qfreplay backtest first)"]


def test_folder_without_results_is_one_clear_line(tmp_path):
    result = CliRunner().invoke(cli, ["report", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {str(tmp_path)!r} is not a qfreplay results folder (no summary.json)"


def test_busy_port_is_one_clear_line(market):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(cli, ["report", str(market["results"]), "--port", str(port)])
    assert result.exit_code == 2
    assert re.fullmatch(rf"error: cannot listen on 127\.0\.0\.1:{port}: .+", result.output.strip())


def test_serves_local_assets_only_and_stops_on_ctrl_c(market):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "qfreplay.cli", "report", str(market["results"]), "--port", str(port)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30).read().decode()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else "timeout"
                time.sleep(0.2)
        assets = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', page)
        assert assets and all(not a.startswith(("http://", "https://", "//")) or a.startswith(f"http://127.0.0.1:{port}/")
                              for a in assets), assets
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert err.splitlines() == [f"report: http://127.0.0.1:{port}/ (Ctrl-C to stop)", "report: stopped"]
