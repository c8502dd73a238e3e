"""The preview: the newest output frame (or input | output) painted in a widget, and the output-only window.

Frames come from the session's ``PreviewSlot`` through ``FrameBridge``: the output thread only raises a flag
and posts one repaint request while none is pending, so a GUI slower than the loop skips frames instead of
queueing them, and the loop never waits for the GUI. Scaling is done with OpenCV (which releases the GIL) to
the widget's size; Qt then only blits.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np
from PySide6.QtCore import QObject, QRect, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QWidget

LAYOUTS = {"swapped": "swapped", "side_by_side": "input | swapped"}


class FrameBridge(QObject):
    """Carries 'a new frame is there' and session events from the session's threads to the GUI thread."""

    frame_ready = Signal()
    event = Signal(object)  # realtime.session.SessionEvent
    ticket_done = Signal(object)  # realtime.swap.target_loader.TargetTicket

    def __init__(self, slot, session=None) -> None:
        super().__init__()
        self.slot = slot  # realtime.frames.preview.PreviewSlot
        self._pending = threading.Event()
        slot.add_listener(self._on_frame)
        if session is not None:
            session.add_listener(self.event.emit)

    def _on_frame(self) -> None:  # the output thread: no work, at most one request in flight
        if not self._pending.is_set():
            self._pending.set()
            self.frame_ready.emit()

    def take(self):
        """The newest preview frame (GUI thread); re-arms the next request."""
        self._pending.clear()
        return self.slot.latest()

    def watch(self, ticket) -> None:
        """Emit ``ticket_done`` when a target ticket finishes (waits in a thread of its own)."""
        threading.Thread(target=lambda: (ticket.wait(), self.ticket_done.emit(ticket)), daemon=True).start()

    def close(self) -> None:
        self.slot.remove_listener(self._on_frame)


def _fit(width: int, height: int, box_w: int, box_h: int) -> tuple[int, int]:
    scale = min(box_w / width, box_h / height)
    return max(1, int(width * scale)), max(1, int(height * scale))


def _resized(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` at ``size`` (w, h) for the screen: halved by area averaging while it shrinks by 2 or more (no
    aliasing), then bilinear. Area averaging at other ratios costs ~10x more (12 ms for 720p -> 880 px)."""
    while size[0] * 2 <= image.shape[1] and size[1] * 2 <= image.shape[0]:
        image = cv2.resize(image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)  # exact halving: fast
    if size == (image.shape[1], image.shape[0]):
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)


class FrameView(QWidget):
    """Paints one picture (BGR uint8) scaled to fit, aspect kept, on black; optional captions per half.

    ``shown`` is the ``PreviewFrame`` painted last (tests and the screenshot read it)."""

    def __init__(self, parent=None, *, captions: bool = True) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setMinimumSize(320, 180)
        self.layout_mode = "swapped"
        self.captions = captions
        self.shown = None
        self.paints = 0  # frames painted (benchmarks count them)
        self._buffer: np.ndarray | None = None
        self._image: QImage | None = None
        self._halves = 1

    def show_frame(self, frame) -> None:
        """Show a ``PreviewFrame`` (its output, or input | output in the side-by-side layout)."""
        ratio = self.devicePixelRatioF()
        box_w, box_h = max(1, int(self.width() * ratio)), max(1, int(self.height() * ratio))
        side = self.layout_mode == "side_by_side" and frame.source is not None
        h, w = frame.image.shape[:2]
        if side:
            size = _fit(2 * w, h, box_w, box_h)
            half = (max(1, size[0] // 2), size[1])
            picture = np.hstack([_resized(frame.source, half), _resized(frame.image, half)])
        else:
            picture = _resized(frame.image, _fit(w, h, box_w, box_h))
        # 32-bit B, G, R, x bytes: Qt's own pixel layout (Format_RGB32), so its blit is a copy, no conversion;
        # the conversion is OpenCV's, which releases the GIL (the live loop's threads keep running meanwhile)
        self._buffer = cv2.cvtColor(picture, cv2.COLOR_BGR2BGRA)
        ph, pw = self._buffer.shape[:2]
        self._image = QImage(self._buffer.data, pw, ph, self._buffer.strides[0], QImage.Format.Format_RGB32)
        self._image.setDevicePixelRatio(ratio)
        self._halves = 2 if side else 1
        self.shown = frame
        self.update()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        if self._image is None:
            painter.fillRect(self.rect(), QColor(0, 0, 0))
            painter.setPen(QColor(200, 200, 200))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "waiting for the first frame…")
            return
        size = self._image.deviceIndependentSize()
        x, y = int((self.width() - size.width()) / 2), int((self.height() - size.height()) / 2)
        w, h = int(size.width()), int(size.height())
        black = QColor(0, 0, 0)
        for bar in (QRect(0, 0, self.width(), y), QRect(0, y + h, self.width(), self.height() - y - h),
                    QRect(0, y, x, h), QRect(x + w, y, self.width() - x - w, h)):  # only the bars around the picture
            if bar.width() > 0 and bar.height() > 0:
                painter.fillRect(bar, black)
        painter.drawImage(x, y, self._image)
        self.paints += 1
        if self.captions and self._halves == 2:
            half = size.width() / 2
            for i, text in enumerate(("input", "swapped")):
                box = QRect(int(x + i * half + 6), int(y + 6), 90, 22)
                painter.fillRect(box, QColor(0, 0, 0, 150))
                painter.setPen(QColor(255, 255, 255))
                painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
        painter.end()


class OutputWindow(QWidget):
    """The output alone, in a window that stays on top: for OBS's window capture where there is no virtual
    camera. No controls, no figures, no captions: what it shows is what the virtual camera would send."""

    closed = Signal()

    def __init__(self) -> None:
        super().__init__(None, Qt.WindowType.Window | Qt.WindowType.WindowStaysOnTopHint)
        self.setWindowTitle("swapcam output")
        self.view = FrameView(self, captions=False)
        self.resize(640, 480)
        self._sized = False

    def resizeEvent(self, event) -> None:
        self.view.setGeometry(self.rect())

    def show_frame(self, frame) -> None:
        if not self._sized:  # open at the frame's own size once
            self.resize(frame.image.shape[1], frame.image.shape[0])
            self._sized = True
        self.view.show_frame(frame)

    def closeEvent(self, event) -> None:
        self.closed.emit()
        super().closeEvent(event)
