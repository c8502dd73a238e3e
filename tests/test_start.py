"""`make live` (python -m swapcam.start): the app window where one can open, else the terminal loop."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _start(env_changes: dict, tmp_path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update(env_changes, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "swapcam.start", "--help"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def test_without_a_display_it_is_the_live_loop_as_before(tmp_path):
    res = _start({}, tmp_path)
    assert res.returncode == 0 and "no display" in res.stdout and "usage: swapcam live" in res.stdout


def test_a_display_qt_cannot_open_falls_back_with_the_reason(tmp_path):
    res = _start({"DISPLAY": ":97"}, tmp_path)  # no X server there
    assert res.returncode == 0 and "Qt cannot open a window here" in res.stdout and "usage: swapcam live" in res.stdout


def test_where_qt_opens_it_is_the_app(tmp_path):
    res = _start({"DISPLAY": ":97", "QT_QPA_PLATFORM": "offscreen"}, tmp_path)
    assert res.returncode == 0 and "usage: swapcam app" in res.stdout and "--screenshot" in res.stdout
