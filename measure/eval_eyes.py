"""Eye fidelity of a swap: do the output's eyes blink and look where the input's do?

Both faces are read by MediaPipe FaceMesh with iris refinement (478 points), on the input frame and on
the swapped output frame, and compared per frame:

- **openness**: the lid gap over the eye's width (corner to corner), the mean of three gaps across
  the middle of the eye, averaged over both eyes (about 0.25-0.35 open, under 0.1 closed);
- **iris position**: the iris centre in the eye's own frame (origin half-way between the corners, x
  along the corner line, units of eye width), so a face that sits elsewhere or is sized differently
  compares fairly; the error is the distance between input and output positions, in % of eye width,
  on frames where the input's eyes are open (an iris behind closed lids is a guess). Beside it,
  ``fixed_gaze``: what an output that never moves its eyes would score (the input's iris against its
  median position), the scale the error is read on.

``EyeTrack`` collects the per-frame figures while ``measure.evaluate`` walks a clip; ``summary()`` gives
the clip's figures: the correlation of output and input openness over the clip, the mean |difference|
on the input's 10 % most-closed frames and on its blinks (openness under half the clip's median: a clip
with few blinks has mostly open eyes among its 10 % most-closed frames), and the iris error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from realtime.face.regions import EYE_CORNERS, eye_opennesses

IRIS_CENTRES = (468, 473)  # of the refined 478-point mesh, in the order of EYE_CORNERS
IRIS_POINTS = 478  # a mesh without the refined iris points has no iris position
CLOSED_SHARE = 0.10  # the input's most-closed frames that count as "closed-eye frames"
BLINK_SHARE = 0.5  # and the frames whose input openness is below this share of the clip's median: blinks
OPEN_SHARE = 0.6  # iris error on frames whose input openness is at least this share of the clip's median


def eye_openness(mesh: np.ndarray) -> float:
    """Mean lid gap over eye width of both eyes (``regions.eye_opennesses``); mesh (>=468, 2+) in any pixels."""
    return float(eye_opennesses(mesh).mean())


def iris_positions(mesh: np.ndarray) -> np.ndarray | None:
    """(2, 2) iris centre of each eye in that eye's frame (x along the corner line, y across it, from the
    corners' midpoint, in eye widths); None without the refined iris points."""
    pts = np.asarray(mesh, np.float64)[:, :2]
    if len(pts) < IRIS_POINTS:
        return None
    out = np.empty((2, 2))
    for k, ((outer, inner), iris) in enumerate(zip(EYE_CORNERS, IRIS_CENTRES)):
        axis = pts[inner] - pts[outer]
        width = max(float(np.linalg.norm(axis)), 1e-6)
        ex = axis / width
        ey = np.array([-ex[1], ex[0]])
        d = pts[iris] - (pts[outer] + pts[inner]) / 2
        out[k] = (d @ ex / width, d @ ey / width)
    return out


def _clean(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], np.float64)


@dataclass
class EyeTrack:
    """Per-frame eye figures of input and output (None where a face is missing)."""

    openness_in: list = field(default_factory=list)
    openness_out: list = field(default_factory=list)
    iris_in: list = field(default_factory=list)  # (2, 2) or None
    iris_out: list = field(default_factory=list)

    def add(self, mesh_in: np.ndarray | None, mesh_out: np.ndarray | None) -> None:
        """One frame: the input's and the output's face mesh (frame pixels), None where no face was found."""
        both = mesh_in is not None and mesh_out is not None
        self.openness_in.append(eye_openness(mesh_in) if mesh_in is not None else None)
        self.openness_out.append(eye_openness(mesh_out) if both else None)
        self.iris_in.append(iris_positions(mesh_in) if both else None)
        self.iris_out.append(iris_positions(mesh_out) if both else None)

    def iris_errors(self) -> np.ndarray:
        """(frames,) iris error in % of eye width (mean of both eyes); NaN where either face is missing,
        the iris points are, or the input's eyes are not open (see OPEN_SHARE)."""
        o_in = _clean(self.openness_in)
        median = float(np.nanmedian(o_in)) if np.isfinite(o_in).any() else math.nan
        errors = np.full(len(self.iris_in), np.nan)
        for i, (a, b) in enumerate(zip(self.iris_in, self.iris_out)):
            if a is None or b is None or not o_in[i] >= OPEN_SHARE * median:
                continue
            errors[i] = 100.0 * float(np.linalg.norm(a - b, axis=1).mean())
        return errors

    def summary(self) -> dict:
        """The clip's eye figures (JSON-ready; None where they cannot be computed)."""
        o_in, o_out = _clean(self.openness_in), _clean(self.openness_out)
        ok = np.isfinite(o_in) & np.isfinite(o_out)
        a, b = o_in[ok], o_out[ok]
        corr = None
        if ok.sum() >= 3 and a.std() > 0 and b.std() > 0:
            corr = float(np.corrcoef(a, b)[0, 1])
        closed = {"frames": 0, "input_openness": None, "output_openness": None, "mean_abs_difference": None}
        if ok.any():
            k = max(1, int(math.ceil(CLOSED_SHARE * ok.sum())))
            idx = np.argsort(a, kind="stable")[:k]
            closed = {"frames": int(k), "input_openness": float(a[idx].mean()),
                      "output_openness": float(b[idx].mean()),
                      "mean_abs_difference": float(np.abs(b[idx] - a[idx]).mean())}
        blinks = {"frames": 0, "input_openness": None, "output_openness": None, "mean_abs_difference": None}
        shut = a < BLINK_SHARE * np.median(a) if ok.any() else np.zeros(0, bool)
        if shut.any():
            blinks = {"frames": int(shut.sum()), "input_openness": float(a[shut].mean()),
                      "output_openness": float(b[shut].mean()), "mean_abs_difference": float(np.abs(b - a)[shut].mean())}
        iris = self.iris_errors()
        fin = iris[np.isfinite(iris)]
        # what a fixed gaze would score: the input's iris positions against their median, on the same frames
        fixed = [a for a, e in zip(self.iris_in, iris) if a is not None and np.isfinite(e)]
        spread = None
        if fixed:
            pos = np.stack(fixed)
            spread = 100.0 * float(np.linalg.norm(pos - np.median(pos, 0), axis=2).mean())
        return {
            "frames": int(ok.sum()),
            "openness_input_mean": float(a.mean()) if ok.any() else None,
            "openness_output_mean": float(b.mean()) if ok.any() else None,
            "openness_correlation": corr,
            "openness_mean_abs_difference": float(np.abs(b - a).mean()) if ok.any() else None,
            "closed": closed,
            "closed_share": CLOSED_SHARE,
            "blinks": blinks,
            "blink_share": BLINK_SHARE,
            "iris_error_pct": {"mean": float(fin.mean()) if fin.size else None,
                               "p95": float(np.percentile(fin, 95)) if fin.size else None,
                               "frames": int(fin.size), "fixed_gaze": spread},
        }

    def per_frame(self) -> dict:
        """Per-frame series for the report's curves."""
        iris = self.iris_errors()
        return {
            "eye_openness_input": [None if v is None else float(v) for v in self.openness_in],
            "eye_openness_output": [None if v is None else float(v) for v in self.openness_out],
            "iris_error_pct": [float(v) if np.isfinite(v) else None for v in iris],
        }
