"""`make live`: the app window where there is a display to open it on, else the live loop in the terminal.

``python -m swapcam.start [options]`` runs `swapcam app [options]` when a display exists and Qt can open a
window on it (checked in a child process first: a Qt that cannot load its platform plugin aborts the process
that tries), otherwise `swapcam live [options]`, saying why. Both take the same options.
"""

from __future__ import annotations

import subprocess
import sys

QT_PROBE = "from PySide6.QtWidgets import QApplication; QApplication(['swapcam'])"


def window_possible() -> tuple[bool, str]:
    """(True, '') when a display exists and Qt opens on it; else (False, why)."""
    from realtime.frames.sinks import display_available

    if not display_available():
        return False, "no display ($DISPLAY / $WAYLAND_DISPLAY unset)"
    try:
        probe = subprocess.run([sys.executable, "-c", QT_PROBE], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return False, "Qt did not start within 60 s"
    if probe.returncode != 0:
        lines = [ln for ln in probe.stderr.strip().splitlines() if ln.strip()]
        return False, f"Qt cannot open a window here ({lines[-1] if lines else f'exit {probe.returncode}'})"
    return True, ""


def main(argv: list[str] | None = None) -> int:
    from swapcam.cli import main as swapcam

    argv = list(sys.argv[1:] if argv is None else argv)
    ok, why = window_possible()
    if ok:
        return swapcam(["app", *argv])
    print(f"swapcam: {why}: running the live loop in this terminal (swapcam live)", flush=True)
    return swapcam(["live", *argv])


if __name__ == "__main__":
    sys.exit(main())
