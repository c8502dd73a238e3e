"""The per-frame work of the live loop: landmarks -> smoothing -> align -> swap (batched) -> merge.

One smoothing path: the whole face mesh (478 points) is smoothed by the One Euro filter, and the
68-point landmarks that alignment and merge use are taken from the smoothed mesh. Swappers that warp
by the mesh (``needs_mesh``, the one-photo swapper) also get it, in aligned pixels.

``FaceSwapProcessor.process(frame, timings)`` follows the pipeline's processor protocol and times
each stage (ms) into ``timings``: landmarks, align, occlusion (with an occlusion stage, while it is on),
swap, merge. The occlusion stage (``realtime.merging.occlusion.OcclusionMasker``) finds what is in front of
each face and the merge keeps those pixels the user's, whichever swapper runs. It is also split in two,
``detect`` (landmarks, smoothing, face-loss hold) and ``render`` (align, swap, merge), so that the
pipeline can overlap the landmarks of one frame with the swap of the previous one. A frame with no face to draw (and
any frame in bypass) is returned as the very same array, unchanged.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from realtime.face.alignment import align_matrix, mesh_to_68, transform_points, warp_to_aligned
from realtime.face.eyes import EyePassThrough, check_eyes
from realtime.merging.merge import Merger, MergeSettings
from realtime.face.smoothing import FaceHold, LandmarkSmoother
from realtime.frames.sources import Frame


class FaceSwapProcessor:
    """Swaps every face (or the largest) of each frame with the current model.

    swappers: one or more swappers (``FaceSwapper``, ``PhotoSwapper``; next/previous switch between them);
    landmarker: a video-mode ``FaceLandmarker`` (made here when None, with ``max_faces``);
    smoother: ``LandmarkSmoother`` (``enabled=False`` turns smoothing off);
    hold / fade: frames a lost face is held, then faded out;
    occlusion: an ``OcclusionMasker`` (hands, glasses, objects stay on top of the swap) or None;
    ``occlusion_on`` switches it per frame (``toggle_occlusion``).
    eyes: 'user' (the user's own eyes between the swapped lids: blinks and gaze follow the user) or 'model'
    (the swap's own eyes); see ``realtime.face.eyes``.
    """

    def __init__(self, swappers: list, *, landmarker=None, max_faces: int = 1, largest_only: bool = False,
                 merge: MergeSettings | None = None, smoother: LandmarkSmoother | None = None,
                 mask_smoothing: float = 0.5, color_smoothing: float = 0.2, hold: int = 3, fade: int = 6,
                 landmark_max_side: int = 1920, occlusion=None, eyes: str = "user") -> None:
        if not swappers:
            raise ValueError("at least one model is needed")
        self.swappers = list(swappers)
        self.index = 0
        if landmarker is None:
            from realtime.face.landmarks import FaceLandmarker

            landmarker = FaceLandmarker(static_images=False, max_faces=max_faces, max_side=landmark_max_side)
            self._owns_landmarker = True
        else:
            self._owns_landmarker = False
        self.landmarker = landmarker
        self.largest_only = largest_only
        self.smoother = smoother if smoother is not None else LandmarkSmoother()
        self.merge_settings = merge or MergeSettings()
        self._mask_smoothing, self._color_smoothing = mask_smoothing, color_smoothing
        self.merger = Merger(self.merge_settings, mask_smoothing=mask_smoothing, color_smoothing=color_smoothing)
        self.hold = FaceHold(hold, fade)
        self.bypass = False
        self.occlusion = occlusion
        self.occlusion_on = occlusion is not None
        self.last_keep: list[np.ndarray] = []  # per face of the last frame: the keep mask in the swapper's crop
        self.eyes = EyePassThrough(check_eyes(eyes))
        self.last_landmarks: dict[int, np.ndarray] = {}  # smoothed 68-point landmarks of the last frame
        # per face merged in the last rendered frame: (blend weight (h, w) float32 on its ROI, ROI slices)
        self.last_blend: list[tuple[np.ndarray, tuple[slice, slice]]] = []

    @property
    def swapper(self):
        return self.swappers[self.index]

    def toggle_bypass(self) -> str:
        self.bypass = not self.bypass
        return "bypass ON (original frame)" if self.bypass else "bypass off"

    def toggle_occlusion(self) -> str:
        """Occlusion on/off from the next frame (off when no occlusion stage was given)."""
        if self.occlusion is None:
            return "occlusion unavailable (no occlusion model loaded)"
        self.occlusion_on = not self.occlusion_on
        return f"occlusion {'on' if self.occlusion_on else 'off'}"

    def toggle_eyes(self) -> str:
        return self.eyes.toggle()

    @property
    def user_eyes(self) -> bool:
        """True while the user's own eyes are drawn (the live setting ``user_eyes``), False for the swap's."""
        return self.eyes.mode == "user"

    @user_eyes.setter
    def user_eyes(self, on: bool) -> None:
        self.eyes.mode = "user" if on else "model"

    def select_model(self, step: int) -> str:
        """Switch to the next (+1) or previous (-1) model; resets per-face temporal state of the merge."""
        self.index = (self.index + step) % len(self.swappers)
        self.merger = Merger(self.merge_settings, mask_smoothing=self._mask_smoothing, color_smoothing=self._color_smoothing)
        return f"model {self.swapper.name}"

    def use_swapper(self, swapper) -> None:
        """Swap with ``swapper`` from the next frame on (the live session's target switch); the merge's per-face
        temporal state starts again, as on ``select_model``."""
        self.swappers, self.index = [swapper], 0
        self.merger = Merger(self.merge_settings, mask_smoothing=self._mask_smoothing, color_smoothing=self._color_smoothing)

    def set_merge(self, **changes) -> None:
        """Change fields of the merge settings (validated) from the next frame on; temporal state is kept."""
        self.merge_settings = replace(self.merge_settings, **changes).validate()
        self.merger.settings = self.merge_settings

    def next_model(self) -> str:
        return self.select_model(+1)

    def prev_model(self) -> str:
        return self.select_model(-1)

    def process(self, frame: Frame, timings: dict[str, float]) -> tuple[np.ndarray, int]:
        """The whole per-frame work in one call (the pipeline's processor protocol)."""
        return self.render(frame, self.detect(frame, timings), timings)

    def detect(self, frame: Frame, timings: dict[str, float]) -> list[tuple[int, np.ndarray, float, float]]:
        """Landmarks, smoothing and face-loss hold: [(face_id, mesh (478, 2), size, opacity)] to draw."""
        t0 = time.perf_counter()
        faces = self.landmarker.detect(frame.image)
        if self.largest_only and len(faces) > 1:
            faces = [max(faces, key=lambda f: f.size)]
        present = {}
        for f in faces:
            present[f.face_id] = (self.smoother(f.face_id, f.points, frame.t, f.size), f.size)
        self.smoother.keep_only(present)
        draws = self.hold.update(present)
        self.last_landmarks = {fid: mesh_to_68(mesh) for fid, mesh, _, _ in draws}
        timings["landmarks"] = (time.perf_counter() - t0) * 1000
        return draws

    def render(self, frame: Frame, draws: list, timings: dict[str, float]) -> tuple[np.ndarray, int]:
        """Align, swap (one batched call) and merge the faces of ``draws`` into a copy of the frame."""
        image = frame.image
        t1 = time.perf_counter()
        self.last_blend = []
        if self.bypass or not draws:
            self.merger.forget([fid for fid, *_ in draws])
            return image, 0
        swapper = self.swapper
        r = swapper.resolution
        landmarks = [mesh_to_68(mesh) for _, mesh, _, _ in draws]
        matrices = [align_matrix(lmk, r, swapper.face_type, swapper.crop_scale) for lmk in landmarks]
        crops = np.empty((len(draws), r, r, 3), np.uint8)
        for i, m in enumerate(matrices):
            crops[i] = warp_to_aligned(image, m, r)
        t2 = time.perf_counter()
        timings["align"] = (t2 - t1) * 1000
        self.last_keep = []
        if self.occlusion is not None and self.occlusion_on:
            self.last_keep = self.occlusion.keep_masks(image, landmarks, crops, matrices, swapper.face_type,
                                                       swapper.crop_scale)
            t_occ = time.perf_counter()
            timings["occlusion"] = (t_occ - t2) * 1000
            t2 = t_occ
        if getattr(swapper, "needs_mesh", False):
            meshes = np.stack([transform_points(mesh, m) for (_, mesh, _, _), m in zip(draws, matrices)])
            result = swapper.get(crops, meshes.astype(np.float32))
        else:
            result = swapper.get(crops)
        t3 = time.perf_counter()
        timings["swap"] = (t3 - t2) * 1000
        out = image.copy()
        for i, (fid, _, _, opacity) in enumerate(draws):
            aligned_lmk = transform_points(landmarks[i], matrices[i]) if self.merge_settings.hull else None
            keep = self.last_keep[i] if self.last_keep else None
            self.last_blend.append(self.merger.merge(out, fid, crops[i], matrices[i], result.face[i],
                                                     result.face_mask[i], result.celeb_mask[i], aligned_lmk, opacity,
                                                     keep))
        # the user's eyes, in frame pixels, after the merge (timed with it), as strong as the swap around them
        strength = self.merge_settings.opacity
        self.eyes.draw(image, out, [(fid, mesh, opacity * strength) for fid, mesh, _, opacity in draws])
        self.merger.forget([fid for fid, *_ in draws])
        timings["merge"] = (time.perf_counter() - t3) * 1000
        return out, len(draws)

    def close(self) -> None:
        if self._owns_landmarker:
            self.landmarker.close()
