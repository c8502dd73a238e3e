"""The overlap governor's decisions, from given figures (no threads, no clock)."""

from __future__ import annotations

import pytest

from realtime.overlap import OverlapGovernor


def _feed(gov: OverlapGovernor, frames: int, interval_ms: float, work_ms: float, t0: float = 0.0) -> float:
    """``frames`` frames captured every ``interval_ms`` and each processed in ``work_ms``; returns the last t."""
    t = t0
    for _ in range(frames):
        t += interval_ms / 1000
        gov.captured(t)
        gov.processed(work_ms)
    return t


def test_overlaps_when_one_frame_takes_longer_than_the_camera_interval():
    gov = OverlapGovernor(window=30)
    t = _feed(gov, 29, 16.7, 20.0)
    assert not gov.overlap  # not before a whole window
    t = _feed(gov, 1, 16.7, 20.0, t)
    assert gov.overlap and gov.switches == 1
    # 1080p60 on 2 cores: overlapped work is inflated (here 18 ms, still above 0.7 x 16.7): it stays on
    t = _feed(gov, 90, 16.7, 18.0, t)
    assert gov.overlap and gov.switches == 1 and gov.overlapped == 90
    # the user switches to a cheap swap: 9 ms of 16.7 is below 0.7, back to one frame at a time
    _feed(gov, 30, 16.7, 9.0, t)
    assert not gov.overlap and gov.switches == 2


def test_stays_one_frame_at_a_time_while_it_keeps_up():
    gov = OverlapGovernor(window=30)
    _feed(gov, 300, 33.3, 25.0)  # 720p30: 25 ms of work in a 33 ms frame
    assert not gov.overlap and gov.switches == 0 and gov.overlapped == 0
    figures = gov.figures()
    assert figures["work_ms_p50"] == pytest.approx(25.0) and figures["interval_ms_p50"] == pytest.approx(33.3)


def test_a_gap_between_runs_is_not_a_camera_interval():
    gov = OverlapGovernor(window=10)
    t = _feed(gov, 10, 16.7, 12.0)
    gov.forget_capture()
    _feed(gov, 10, 16.7, 12.0, t + 60.0)  # a minute between two bench chunks
    assert gov.figures()["interval_ms_p50"] == pytest.approx(16.7) and not gov.overlap


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        OverlapGovernor(window=1)
    with pytest.raises(ValueError):
        OverlapGovernor(on_ratio=0.5, off_ratio=0.8)
