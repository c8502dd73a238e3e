"""End-to-end latency that does not trust the pipeline's clocks: a frame number written into pixels.

``StampedSource`` serves pre-decoded frames like a camera (paced at ``fps``) or as fast as
possible, writes a running frame number into a corner of each frame as a row of black/white blocks
(a start marker, 16 bits of number, 4 bits of check) and notes when it handed the frame over.
``StampReaderSink`` wraps the real sink: it reads the number back out of the frame it is given, and
the time between the two is the latency a viewer sees — queues, drops and all. The code sits in the
top-left corner, away from the face, which is the only region the swap redraws.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

BITS = 16
CHECK_BITS = 4
MARKER = (1, 0)  # a white then a black block: tells a stamped corner from any picture


def block_size(width: int) -> int:
    """Side of one code block in pixels: large enough to survive a resize, small enough to fit."""
    return max(4, width // 80)


def _bits(number: int) -> list[int]:
    value = number % (1 << BITS)
    data = [(value >> i) & 1 for i in range(BITS)]
    check = [(bin(value).count("1") + 3 * i) % 2 ^ ((value >> (4 * i)) & 1) for i in range(CHECK_BITS)]
    return list(MARKER) + data + check


def write_stamp(frame: np.ndarray, number: int, margin: int = 2) -> None:
    """Write ``number`` (mod 2**16) into the top-left corner of a BGR frame, in place."""
    b = block_size(frame.shape[1])
    for i, bit in enumerate(_bits(number)):
        x = margin + i * b
        frame[margin : margin + b, x : x + b] = 255 if bit else 0


def read_stamp(frame: np.ndarray, margin: int = 2) -> int | None:
    """The number written by ``write_stamp``, or None when the corner holds no valid code."""
    b = block_size(frame.shape[1])
    inner = max(1, b // 4)  # sample the block centre: edges may be blurred by a resize
    n = len(MARKER) + BITS + CHECK_BITS
    if frame.shape[0] < margin + b or frame.shape[1] < margin + n * b:
        return None
    bits = []
    for i in range(n):
        x = margin + i * b
        patch = frame[margin + inner : margin + b - inner, x + inner : x + b - inner]
        bits.append(1 if float(patch.mean()) > 127.5 else 0)
    value = sum(bit << i for i, bit in enumerate(bits[len(MARKER) : len(MARKER) + BITS]))
    return value if bits == _bits(value) else None


@dataclass
class FrameStore:
    """Pre-decoded frames served in ping-pong order (0, 1, ..., n-1, n-2, ..., 1, 0, 1, ...) so that
    motion stays continuous when the clip is shorter than the run; ``cursor`` is where the next
    read starts, kept per configuration so each one sees an unbroken video."""

    frames: list[np.ndarray]
    cursor: int = 0

    def next(self) -> np.ndarray:
        n = len(self.frames)
        period = max(1, 2 * n - 2)
        k = self.cursor % period
        self.cursor += 1
        return self.frames[k if k < n else period - k]


@dataclass
class StampClock:
    """Shared by a source and a sink: number -> time the source handed the frame over, and the
    latencies the sink measured."""

    handed: dict[int, float] = field(default_factory=dict)
    latency_ms: list[float] = field(default_factory=list)
    unreadable: int = 0
    counter: int = 0


class _Wait:
    """What the pipeline's capture thread reads to leave pacing waits out of the capture time."""

    last_wait_s: float = 0.0


class StampedSource:
    """A camera-like source over a ``FrameStore``: paced at ``fps`` (``live`` = True) or as fast as
    possible (``fps`` None: not live, the pipeline processes every frame). Follows the pipeline's
    source protocol (read / fps / live / describe / close); ``stamp`` False leaves frames untouched.

    Each read copies the frame, as a camera delivers a fresh buffer every time.
    """

    def __init__(self, store: FrameStore, clock: StampClock, fps: float | None, *, stamp: bool = True) -> None:
        self.store, self.clock, self.stamp = store, clock, stamp
        self.fps = float(fps) if fps else 30.0
        self.live = fps is not None
        self._period = 1.0 / fps if fps else 0.0
        self._start: float | None = None
        self._count = 0
        self._pacer = _Wait()

    def read(self) -> np.ndarray:
        if self._period:
            now = time.perf_counter()
            if self._start is None:
                self._start = now
            due = self._start + self._count * self._period
            self._pacer.last_wait_s = max(0.0, due - now)
            if due > now:
                time.sleep(due - now)
            self._count += 1
        frame = self.store.next().copy()
        if self.stamp:
            number = self.clock.counter % (1 << BITS)
            write_stamp(frame, number)
            self.clock.counter += 1
            self.clock.handed[number] = time.perf_counter()
            self.clock.handed.pop((number - 4096) % (1 << BITS), None)  # dropped frames never come back
        return frame

    def describe(self) -> str:
        pace = f"paced at {self.fps:.0f} fps" if self.live else "as fast as possible"
        return f"{len(self.store.frames)} pre-decoded frames, ping-pong, {pace}"

    def close(self) -> None:
        pass


class StampReaderSink:
    """Wraps a sink: writes the frame to it, then reads the stamp and records capture -> sink latency.

    ``on_frame`` (optional) is called once per frame (e.g. a progress bar's update).
    """

    def __init__(self, inner, clock: StampClock, on_frame=None) -> None:
        self.inner, self.clock, self.on_frame = inner, clock, on_frame

    def write(self, frame: np.ndarray, info=None) -> None:
        self.inner.write(frame, info)
        now = time.perf_counter()
        number = read_stamp(frame)
        t = self.clock.handed.pop(number, None) if number is not None else None
        if t is None:
            self.clock.unreadable += 1
        else:
            self.clock.latency_ms.append((now - t) * 1000.0)
        if self.on_frame is not None:
            self.on_frame()

    def close(self) -> None:
        self.inner.close()
