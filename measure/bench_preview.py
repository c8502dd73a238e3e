"""The app's preview inside `swapcam bench` (``--compare preview=off,on``): what a shown window costs the loop.

``PreviewHarness`` is the app's own preview path: a ``realtime.frames.preview.PreviewSlot`` (the sink the session
feeds) -> ``swapcam.gui.preview.FrameBridge`` (one repaint request in flight, newer frames replace older) ->
``FrameView`` (OpenCV scaling, Qt blit) in a real Qt window of ``size``, its paints counted. Qt needs the main
thread, so ``run(fn)`` runs the measurement in a worker thread while the Qt event loop runs here; without a
display the window is drawn by Qt's offscreen platform (software painting, no compositor).
"""

from __future__ import annotations

import os
import threading


class PreviewHarness:
    """A preview window at ``size`` (w, h) in layout ``layout`` ('swapped' or 'side_by_side')."""

    def __init__(self, size: tuple[int, int] = (1280, 720), layout: str = "swapped") -> None:
        from realtime.frames.sinks import display_available

        if not display_available():
            os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        from PySide6.QtCore import QObject, Signal
        from PySide6.QtWidgets import QApplication

        from realtime.frames.preview import PreviewSlot
        from swapcam.gui.preview import FrameBridge, FrameView

        class _Done(QObject):
            finished = Signal()

        self.app = QApplication.instance() or QApplication(["swapcam-bench"])
        self.slot = PreviewSlot()
        self.view = FrameView()
        self.view.layout_mode = layout
        self.view.setWindowTitle("swapcam bench preview")
        self.view.resize(*size)
        self.view.show()
        self.bridge = FrameBridge(self.slot)
        self.bridge.frame_ready.connect(self._show)
        self.shown = 0  # frames handed to the view (each then painted once, or replaced before its paint)
        self._done = _Done()
        self._done.finished.connect(self.app.quit)

    def _show(self) -> None:
        frame = self.bridge.take()
        if frame is not None:
            self.view.show_frame(frame)
            self.shown += 1

    @property
    def painted(self) -> int:
        return self.view.paints

    def run(self, fn):
        """``fn()`` in a worker thread while the Qt event loop runs in this one; its result (or its error)."""
        outcome: dict = {}

        def work() -> None:
            try:
                outcome["value"] = fn()
            except BaseException as exc:  # re-raised in the caller's thread
                outcome["error"] = exc
            finally:
                self._done.finished.emit()

        thread = threading.Thread(target=work, name="bench", daemon=True)
        thread.start()
        self.app.exec()
        thread.join()
        self.bridge.close()
        self.view.close()
        if "error" in outcome:
            raise outcome["error"]
        return outcome.get("value")
