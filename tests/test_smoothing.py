"""Temporal smoothing: the One Euro filter's behaviour, and measured jitter on a real still-face video."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from realtime.merging.color_transfer import color_stats
from realtime.face.smoothing import Ema, FaceHold, LandmarkSmoother, OneEuroFilter


def test_one_euro_steadies_noise_and_follows_motion():
    rng = np.random.default_rng(0)
    t = np.arange(120) / 30.0
    still = 100.0 + rng.normal(0, 1.0, (120, 2))
    filt = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    out = np.array([filt(x, ti) for x, ti in zip(still, t)])
    assert out[30:].std(0).max() < 0.5 * still[30:].std(0).min()

    # A ramp at 200 px/s: with beta the filter follows within a few px; without, it lags far behind.
    ramp = (200.0 * t)[:, None] * np.ones((1, 2))
    lag = {}
    for beta in (0.0, 0.5):
        f = OneEuroFilter(min_cutoff=1.0, beta=beta)
        res = np.array([f(x, ti) for x, ti in zip(ramp, t)])
        lag[beta] = float(np.abs(res[60:] - ramp[60:]).mean())
    assert lag[0.5] < 0.25 * lag[0.0]
    assert lag[0.5] < 5.0


def test_one_euro_first_sample_and_repeated_time():
    f = OneEuroFilter()
    x = np.array([[1.0, 2.0]])
    assert np.array_equal(f(x, 0.0), x)
    assert np.isfinite(f(x + 1, 0.0)).all()  # same timestamp: no division by zero


def test_landmark_smoother_per_face_and_off():
    sm = LandmarkSmoother()
    a, b = np.zeros((68, 2)), np.full((68, 2), 50.0)
    sm(0, a, 0.0, 100.0)
    sm(1, b, 0.0, 100.0)
    out = sm(0, a + 1.0, 1 / 30, 100.0)
    assert 0.0 < out.mean() < 1.0  # smoothed toward the previous position of face 0 only
    sm.keep_only([1])
    assert np.array_equal(sm(0, a + 5.0, 2 / 30, 100.0), a + 5.0)  # face 0 forgotten: starts fresh
    off = LandmarkSmoother(enabled=False)
    assert np.array_equal(off(0, a + 3.0, 0.0, 100.0), a + 3.0)


def test_ema_on_arrays_and_colour_stats(astronaut):
    ema = Ema(0.25)
    assert np.array_equal(ema("k", np.zeros(3)), np.zeros(3))
    assert np.allclose(ema("k", np.ones(3)), 0.25)
    img = astronaut.astype(np.float32) / 255
    s1, s2 = color_stats(img[:100], None, "lab"), color_stats(img[-100:], None, "lab")
    ema2 = Ema(0.5)
    ema2("c", s1)
    mid = ema2("c", s2)
    assert np.allclose(mid.mean, (s1.mean + s2.mean) / 2)
    assert Ema(1.0)("x", s2) is s2
    with pytest.raises(ValueError):
        Ema(0.0)


def test_face_hold_holds_then_fades_then_drops():
    hold = FaceHold(hold=2, fade=3)
    lmk = np.zeros((68, 2))
    assert [o[3] for o in hold.update({7: (lmk, 100.0)})] == [1.0]
    opacities = [hold.update({}) for _ in range(7)]
    values = [o[0][3] if o else None for o in opacities]
    assert values[:2] == [1.0, 1.0]
    assert values[2] > values[3] > values[4] > 0.0
    assert values[5] is None and values[6] is None
    assert hold.face_ids == []


def _landmarks_over(video, smoother: LandmarkSmoother | None) -> np.ndarray:
    from realtime.face.landmarks import FaceLandmarker

    cap = cv2.VideoCapture(str(video))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    out = []
    with FaceLandmarker(static_images=False) as lm:
        i = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            faces = lm.detect(frame)
            if faces:
                pts = faces[0].landmarks68.astype(np.float64)
                if smoother is not None:
                    pts = smoother(faces[0].face_id, pts, i / fps, faces[0].size)
                out.append(pts)
            i += 1
    cap.release()
    return np.array(out)


def test_smoothing_lowers_landmark_jitter_on_a_still_face(still_face_video):
    """Shake = mean frame-to-frame landmark movement on a still head (sensor noise only); also the std
    of each landmark over the frames (which includes the tracker's slow drift)."""
    raw = _landmarks_over(still_face_video, None)
    smooth = _landmarks_over(still_face_video, LandmarkSmoother())
    assert len(raw) >= 50 and len(smooth) == len(raw)
    settle = 5  # the filter starts at the first sample; judge both series after a few frames
    shake_raw = float(np.abs(np.diff(raw[settle:], axis=0)).mean())
    shake_smooth = float(np.abs(np.diff(smooth[settle:], axis=0)).mean())
    std_raw, std_smooth = float(raw[settle:].std(0).mean()), float(smooth[settle:].std(0).mean())
    print(f"still face: shake raw {shake_raw:.3f} px/frame, One Euro {shake_smooth:.3f}; "
          f"std raw {std_raw:.3f} px, One Euro {std_smooth:.3f}")
    assert shake_smooth < 0.4 * shake_raw
    assert std_smooth < 0.8 * std_raw
    assert np.abs(smooth[settle:].mean(0) - raw[settle:].mean(0)).mean() < 1.0  # no offset


def test_smoothing_does_not_lag_a_moving_face(astronaut_video):
    """On a moving head the smoothed landmarks stay close to the raw ones (a lagging filter trails by many px)."""
    raw = _landmarks_over(astronaut_video, None)
    smooth = _landmarks_over(astronaut_video, LandmarkSmoother())
    lagging = _landmarks_over(astronaut_video, LandmarkSmoother(min_cutoff=1.0, beta=0.0))
    lag, lag_plain = float(np.abs(smooth - raw).mean()), float(np.abs(lagging - raw).mean())
    print(f"moving face: mean distance to raw landmarks: One Euro {lag:.2f} px, fixed low-pass {lag_plain:.2f} px")
    assert lag < 2.5
    assert lag < 0.6 * lag_plain
