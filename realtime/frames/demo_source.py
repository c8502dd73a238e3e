"""A built-in demo source that needs no file and no camera.

The astronaut portrait shipped with scikit-image (Eileen Collins, NASA, public domain) is cut out with
a soft oval and moved like a person in front of a webcam — head turn (rotation), sway (shift), lean
(scale) — over a gradient background, with a slow blink and mouth motion made by squashing the eye
and mouth regions. 640x480, 30 fps, finite (``seconds``) unless ``loop``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from realtime.frames.pacing import Pacer

# Regions of the 512x512 astronaut image (pixels), measured once with MediaPipe FaceMesh.
_FACE_CENTRE = (225.0, 124.0)
_FACE_SIZE = 106.0
_EYES = (186, 84, 266, 120)      # x0, y0, x1, y1
_MOUTH = (196, 134, 251, 160)


def _astronaut_bgr() -> np.ndarray:
    import skimage.data

    return np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1])


def _squash(image: np.ndarray, box: tuple[int, int, int, int], factor: float) -> None:
    """Scale a region vertically about its centre by ``factor`` (<1 closes eyes / mouth), in place."""
    x0, y0, x1, y1 = box
    region = image[y0:y1, x0:x1]
    h = y1 - y0
    m = np.float32([[1, 0, 0], [0, factor, (1 - factor) * h / 2]])
    image[y0:y1, x0:x1] = cv2.warpAffine(region, m, (x1 - x0, h), borderMode=cv2.BORDER_REPLICATE)


class DemoSource:
    """The animated astronaut: ``read()`` gives the next 640x480 BGR frame, None after ``seconds``."""

    def __init__(self, *, width: int = 640, height: int = 480, fps: float = 30.0, seconds: float = 10.0,
                 loop: bool = False, realtime: bool = True) -> None:
        self.width, self.height, self.fps = width, height, float(fps)
        self.seconds, self.loop = seconds, loop
        self.live = realtime
        self.n_frames = max(1, int(round(seconds * self.fps)))
        self._index = 0
        self._pacer = Pacer(self.fps if realtime else None)
        src = _astronaut_bgr()
        cx, cy = _FACE_CENTRE
        half = _FACE_SIZE * 1.0
        x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
        x1, y1 = int(min(512, cx + half)), int(min(512, cy + half))
        self._head = src[y0:y1, x0:x1].copy()
        self._eyes = tuple(v - o for v, o in zip(_EYES, (x0, y0, x0, y0)))
        self._mouth = tuple(v - o for v, o in zip(_MOUTH, (x0, y0, x0, y0)))
        hh, hw = self._head.shape[:2]
        alpha = np.zeros((hh, hw), np.float32)
        cv2.ellipse(alpha, (int(cx - x0), int(cy - y0 + 10)), (int(hw * 0.36), int(hh * 0.44)), 0, 0, 360, 1.0, -1)
        self._alpha = cv2.GaussianBlur(alpha, (0, 0), hw * 0.04)
        t = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
        background = (np.float32([150, 120, 90]) * (1 - t) + np.float32([70, 90, 110]) * t) * np.ones((1, width, 1), np.float32)
        self._background_u8 = (background + 0.5).astype(np.uint8)
        self._face_centre = (cx - x0, cy - y0)
        self._scale = 0.38 * height / _FACE_SIZE

    def frame_at(self, i: int) -> np.ndarray:
        """Frame ``i`` of the animation (deterministic)."""
        t = i / self.fps
        head = self._head.copy()
        blink = 1.0 - 0.4 * max(0.0, math.cos(2 * math.pi * t / 3.0)) ** 40  # a short blink every 3 s
        _squash(head, self._eyes, max(blink, 0.6))
        _squash(head, self._mouth, 1.0 + 0.25 * math.sin(2 * math.pi * t * 1.3))
        angle = 10.0 * math.sin(2 * math.pi * t / 4.0)
        scale = self._scale * (1.0 + 0.08 * math.sin(2 * math.pi * t / 5.0))
        cx = self.width / 2 + 0.08 * self.width * math.sin(2 * math.pi * t / 6.0)
        cy = self.height / 2 + 0.04 * self.height * math.sin(2 * math.pi * t / 3.5)
        m = cv2.getRotationMatrix2D(self._face_centre, angle, scale)
        m[:, 2] += (cx - self._face_centre[0], cy - self._face_centre[1])
        # Only the head's box of the frame is computed; the rest is the precomputed background.
        hh, hw = head.shape[:2]
        corners = np.array([[0, 0, 1], [hw, 0, 1], [0, hh, 1], [hw, hh, 1]], np.float64) @ m.T
        x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int) + 1, (self.width, self.height))
        frame = self._background_u8.copy()
        if x1 <= x0 or y1 <= y0:
            return frame
        m[:, 2] -= (x0, y0)
        size = (int(x1 - x0), int(y1 - y0))
        face = cv2.warpAffine(head, m, size, flags=cv2.INTER_LINEAR)
        a = cv2.warpAffine(self._alpha, m, size, flags=cv2.INTER_LINEAR)
        bg = frame[y0:y1, x0:x1]
        frame[y0:y1, x0:x1] = cv2.blendLinear(face, bg, a, 1.0 - a)
        return frame

    def read(self) -> np.ndarray | None:
        if self._index >= self.n_frames:
            if not self.loop:
                return None
            self._index = 0
        self._pacer.wait()
        frame = self.frame_at(self._index)
        self._index += 1
        return frame

    def describe(self) -> str:
        length = "looped" if self.loop else f"{self.seconds:g} s"
        return f"built-in demo (astronaut, {self.width}x{self.height} @ {self.fps:.0f} fps, {length})"

    def close(self) -> None:
        pass
