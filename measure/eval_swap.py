"""Swap a clip for `swapcam eval --model`, with the live loop's own per-frame code (``FaceSwapProcessor``).

Frames go through the processor one by one, in order, with media time ``i / fps`` for the temporal
filters, exactly as the live pipeline does for a video file read as fast as possible — so the score
is the score of what a live viewer would see, smoothing and merge included.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np


def swap_frames(frames: Iterable[np.ndarray], model: str | Path, *, color: str = "rct", smoothing: bool = True,
                fps: float = 25.0, providers: list[str] | None = None, swapper=None) -> Iterator[np.ndarray]:
    """Yield each frame swapped with ``model`` (frames without a face come back unchanged).

    ``model`` is anything ``--model`` takes (an ONNX/DFM model, or a photo, folder or video for the
    one-photo swap); ``swapper`` is an already opened one (then ``model`` only names it).
    """
    from realtime.merge import MergeSettings
    from realtime.processor import FaceSwapProcessor
    from realtime.smoothing import LandmarkSmoother
    from realtime.sources import Frame
    from realtime.swappers import open_swapper

    if swapper is None:
        swapper = open_swapper(model, providers=providers)
    swapper.prepare()
    processor = FaceSwapProcessor([swapper], smoother=LandmarkSmoother(enabled=smoothing),
                                  merge=MergeSettings(color=color).validate())
    try:
        for i, image in enumerate(frames):
            timings: dict[str, float] = {}
            out, _ = processor.process(Frame(image, i, time.perf_counter(), 0.0, i / fps), timings)
            yield out
    finally:
        processor.close()
