"""The classic landmark face swap (the 2016 OpenCV recipe), as a reference row for `swapcam eval`.

``python -m measure.classic_warp VIDEO --still TARGET.png --out FOLDER [--max-frames 150]`` writes the swapped
frames of VIDEO as lossless PNGs into FOLDER, for ``swapcam eval VIDEO --swapped FOLDER ...`` to score on the
same frames and by the same command as any swap.

Per frame, nothing learnt and nothing smoothed (the recipe as it is usually written, with MediaPipe's mesh for
dlib's 68 points): the still's face is cut into the Delaunay triangles of its landmarks and each triangle is
warped affinely onto the same triangle of the frame's landmarks; inside the convex hull of the frame's
landmarks (the face oval up to the hairline with ``--points mesh``, the brows with ``--points 68``) the
warped face takes the frame's mean and spread of each L*a*b* channel (nothing else of the frame's tone or
light); it is pasted with a feathered edge (``--paste seamless``: OpenCV's Poisson ``seamlessClone``).
Frames without a face are written as they came.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from scipy.spatial import Delaunay

MESH_POINTS = 468


def landmarks(face, points: str) -> np.ndarray:
    """(K, 2) float64 frame pixels of a ``DetectedFace``: the 468 mesh points or the 68-point scheme."""
    return (face.points[:MESH_POINTS] if points == "mesh" else face.landmarks68).astype(np.float64)


def warp_triangles(still: np.ndarray, src: np.ndarray, dst: np.ndarray, triangles: np.ndarray,
                   shape: tuple) -> np.ndarray:
    """(H, W, 3) float32: every triangle (indices into src/dst points) of ``still`` warped affinely from its
    ``src`` corners onto its ``dst`` corners, on a canvas of ``shape``; 0 outside the triangles."""
    h, w = shape[:2]
    out = np.zeros((h, w, 3), np.float32)
    img = still.astype(np.float32)
    for tri in triangles:
        s, d = src[tri].astype(np.float32), dst[tri].astype(np.float32)
        x, y, bw, bh = cv2.boundingRect(np.round(d).astype(np.int32))
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + bw, w), min(y + bh, h)
        if x1 <= x0 or y1 <= y0:
            continue
        sx, sy, sw, sh = cv2.boundingRect(np.round(s).astype(np.int32))
        sx0, sy0 = max(sx - 1, 0), max(sy - 1, 0)
        patch = img[sy0: sy + sh + 2, sx0: sx + sw + 2]
        if patch.size == 0:
            continue
        m = cv2.getAffineTransform((s - (sx0, sy0)).astype(np.float32), (d - (x0, y0)).astype(np.float32))
        warped = cv2.warpAffine(patch, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        mask = np.zeros((y1 - y0, x1 - x0), np.float32)
        cv2.fillConvexPoly(mask, np.round((d - (x0, y0)) * 16).astype(np.int32), 1.0, cv2.LINE_AA, 4)
        region = out[y0:y1, x0:x1]
        region *= (1.0 - mask)[..., None]
        region += warped * mask[..., None]
    return out


def lab_match(face: np.ndarray, frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``face`` (float32 BGR 0..255) with the mean and spread of each L*a*b* channel of ``frame`` (uint8 BGR),
    both measured where ``mask`` (bool) is set."""
    f = cv2.cvtColor(np.clip(face, 0, 255).astype(np.uint8), cv2.COLOR_BGR2LAB).astype(np.float32)
    g = cv2.cvtColor(frame, cv2.COLOR_BGR2LAB).astype(np.float32)
    fm, fs = f[mask].mean(0), f[mask].std(0) + 1e-6
    gm, gs = g[mask].mean(0), g[mask].std(0)
    out = (f - fm) * (gs / fs) + gm
    return cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2BGR).astype(np.float32)


class ClassicSwap:
    """The classic swap of one still onto frames (see the module docstring).

    points: 'mesh' (MediaPipe's 468 points; hull to the hairline) or '68'; paste: 'feather' or 'seamless';
    feather: the paste's soft edge as a fraction of the face's width; forehead: None (the whole hull) or where
    the hull is cut across the forehead, as the one-photo swap cuts it (``realtime.face.regions.forehead_cut``:
    0 the brows, 1 the hairline; a level line of the frame; mesh points only), so the user's hairline stays.
    """

    def __init__(self, still: np.ndarray, *, points: str = "mesh", paste: str = "feather", feather: float = 0.03,
                 forehead: float | None = None) -> None:
        from realtime.face.landmarks import FaceLandmarker

        if points not in ("mesh", "68") or paste not in ("feather", "seamless"):
            raise ValueError("points must be mesh or 68, paste feather or seamless")
        if forehead is not None and points != "mesh":
            raise ValueError("a forehead cut needs the mesh points")
        self.forehead = forehead
        with FaceLandmarker(static_images=True) as lm:
            faces = lm.detect(still)
        if not faces:
            raise ValueError("no face found in the still")
        self.still = still
        self.points, self.paste, self.feather = points, paste, feather
        self.src = landmarks(max(faces, key=lambda f: f.size), points)
        self.triangles = Delaunay(self.src).simplices
        self._landmarker = FaceLandmarker(static_images=False)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        faces = self._landmarker.detect(frame)
        if not faces:
            return frame
        dst = landmarks(max(faces, key=lambda f: f.size), self.points)
        warped = warp_triangles(self.still, self.src, dst, self.triangles, frame.shape)
        hull = np.zeros(frame.shape[:2], np.uint8)
        cv2.fillConvexPoly(hull, cv2.convexHull(np.round(dst).astype(np.int32)), 1)
        if self.forehead is not None:
            from realtime.face.regions import forehead_cut

            hull[: int(np.clip(np.ceil(forehead_cut(dst, self.forehead)), 0, hull.shape[0]))] = 0
        inside = hull.astype(bool)
        if inside.sum() < 16:
            return frame
        toned = lab_match(warped, frame, inside)
        width = float(np.ptp(dst[:, 0]))
        if self.paste == "seamless":
            x, y, w, h = cv2.boundingRect(hull)
            centre = (x + w // 2, y + h // 2)
            return cv2.seamlessClone(toned.astype(np.uint8), frame, hull * 255, centre, cv2.NORMAL_CLONE)
        k = max(1, int(round(self.feather * width)))
        alpha = cv2.erode(hull.astype(np.float32), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1,) * 2))
        alpha = cv2.GaussianBlur(alpha, (0, 0), k / 2.0)[..., None]
        return np.clip(toned * alpha + frame.astype(np.float32) * (1 - alpha) + 0.5, 0, 255).astype(np.uint8)

    def close(self) -> None:
        self._landmarker.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m measure.classic_warp", description=__doc__.split("\n\n")[0])
    p.add_argument("video", help="input video file or folder of frames")
    p.add_argument("--still", required=True, type=Path, help="the target's still (e.g. frame 1258 of grid_s1.mp4)")
    p.add_argument("--out", required=True, type=Path, help="folder for the swapped frames (PNG)")
    p.add_argument("--max-frames", type=int, default=None, help="the first N frames only")
    p.add_argument("--points", choices=("mesh", "68"), default="mesh",
                   help="landmarks: MediaPipe's 468-point mesh (hull to the hairline) or the 68-point scheme")
    p.add_argument("--paste", choices=("feather", "seamless"), default="feather", help="feathered or Poisson paste")
    p.add_argument("--forehead", type=float, default=None, metavar="KEEP",
                   help="cut the hull across the forehead as the one-photo swap does (0 brows .. 1 hairline; "
                        "the user's hairline stays); default: the whole hull")
    args = p.parse_args(argv)
    from tqdm import tqdm

    from measure.evaluate import EvalInputError, read_frames
    from realtime.util.atomic_files import write_image

    still = cv2.imread(str(args.still))
    if still is None:
        print(f"classic_warp: {args.still}: not a readable image", file=sys.stderr)
        return 2
    try:
        swap = ClassicSwap(still, points=args.points, paste=args.paste, forehead=args.forehead)
        args.out.mkdir(parents=True, exist_ok=True)
        n = 0
        for n, frame in enumerate(tqdm(read_frames(args.video, args.max_frames), desc="classic", unit="frame"), 1):
            write_image(args.out / f"{n - 1:06d}.png", swap(frame))
        swap.close()
    except (EvalInputError, ValueError, OSError) as exc:
        print(f"classic_warp: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {n} frames to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
