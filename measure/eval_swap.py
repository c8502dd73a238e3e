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

from realtime.merging.merge import MergeSettings


def swap_frames(frames: Iterable[np.ndarray], model: str | Path, *, merge: MergeSettings | None = None,
                smoothing: bool = True, fps: float = 25.0, providers: list[str] | None = None,
                swapper=None, occlusion=None, eyes: str = "user") -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (swapped frame, blend weight) for each frame: the weight is the merge's (H, W) float32 map in
    [0, 1] (0 where the frame was left as it was; frames without a face come back unchanged, weight 0).

    ``model`` is anything ``--model`` takes (an ONNX/DFM model, or a photo, folder or video for the
    one-photo swap); ``swapper`` is an already opened one (then ``model`` only names it); ``occlusion`` an
    ``OcclusionMasker`` (the live loop's occlusion stage) or None for none; ``eyes``: the processor's eye
    pass-through ('user' or 'model').
    """
    from realtime.processor import FaceSwapProcessor
    from realtime.face.smoothing import LandmarkSmoother
    from realtime.frames.sources import Frame
    from realtime.swap.swappers import open_swapper

    if swapper is None:
        swapper = open_swapper(model, providers=providers)
    swapper.prepare()
    processor = FaceSwapProcessor([swapper], smoother=LandmarkSmoother(enabled=smoothing),
                                  merge=(merge or MergeSettings()).validate(), occlusion=occlusion, eyes=eyes)
    try:
        for i, image in enumerate(frames):
            timings: dict[str, float] = {}
            out, _ = processor.process(Frame(image, i, time.perf_counter(), 0.0, i / fps), timings)
            weight = np.zeros(image.shape[:2], np.float32)
            for face_weight, sl in processor.last_blend:
                np.maximum(weight[sl], face_weight, out=weight[sl])
            yield out, weight
    finally:
        processor.close()
