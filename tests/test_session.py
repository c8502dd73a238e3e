"""The live session: one table of settings, commands that land between two frames while capture runs on,
targets loaded off the live thread, outputs switched on and off, figures readable at any time."""

from __future__ import annotations

import argparse
import re
import threading
from pathlib import Path

import numpy as np
import pytest

from realtime import live_settings
from realtime.frames.sources import ImageFolderSource
from realtime.live_settings import SettingError
from tests.fixtures.cameras import RecordingCamera, recording_backend
from tests.fixtures.sessions import (
    MODEL,
    PHOTO,
    WAIT_S,
    demo_still,
    face_difference,
    frame_after,
    outside_label,
    start_session,
)


def test_the_settings_table_validates_all_or_nothing_and_maps_the_command_line():
    assert live_settings.validate({"opacity": 0.8, "bypass": True, "erode": 3.0}) == {
        "opacity": 0.8, "bypass": True, "erode": 3}
    for bad, why in (({"opacity": 1.5}, "outside [0, 1]"), ({"colour": "rct"}, "unknown setting 'colour'"),
                     ({"color": "sepia"}, "not one of none, rct"), ({"bypass": "yes"}, "expected true or false"),
                     ({"erode": 1.5}, "whole number"), ({"mask_threshold": 1.0}, "outside [0, 1)"),
                     ({"opacity": float("nan")}, "finite"), ({"blur": True}, "expected a number")):
        with pytest.raises(SettingError, match=re.escape(why)) as err:
            live_settings.validate({"label": False, **bad})
        assert "\n" not in str(err.value)
    args = argparse.Namespace(opacity=0.5, color="none", no_smoothing=True, no_label=False, forehead=None,
                              mask_threshold=0.3, erode=2, blur=4, sharpen=0.0, mask="both", hull=False)
    values = live_settings.from_args(args)
    assert values["opacity"] == 0.5 and values["color"] == "none" and values["smoothing"] is False
    assert values["label"] is True and values["forehead"] == 0.5 and values["bypass"] is False
    with pytest.raises(SettingError, match="--erode: erode: 99"):
        live_settings.from_args(argparse.Namespace(erode=99))
    assert live_settings.from_args(argparse.Namespace(hull="on"))["hull"] is True  # an on|off option
    schema = live_settings.json_schema()
    assert set(schema["properties"]) == set(live_settings.BY_NAME) and schema["additionalProperties"] is False
    assert live_settings.HOTKEYS["b"] == "bypass"


@pytest.fixture(scope="module")
def session(still_folder):
    from realtime.session import SessionOptions

    with recording_backend("swapcam-session-test"):
        events = []
        live = start_session(ImageFolderSource(still_folder, fps=30, loop=True),
                             options=SessionOptions(vcam_backend="swapcam-session-test", vcam_format="BGR"),
                             log=events.append)
        live.test_events = events
        yield live
        live.close()


def test_bypass_shows_the_input_and_the_swap_comes_back(session, face_mask):
    still = demo_still()
    swapped = frame_after(session, session.version, settle=3)
    assert swapped.info.faces == 1 and face_difference(swapped.image, still, face_mask) > 8
    session.update({"bypass": True})
    passed = frame_after(session, session.version)
    keep = outside_label(passed.image)
    # the input as it was, but for the invisible watermark (+-2 grey levels) and the label's corner
    assert passed.info.faces == 0 and np.abs(passed.image.astype(int) - still)[keep].max() <= 3
    session.update({"bypass": False})
    back = frame_after(session, session.version, settle=2)
    assert back.seq > passed.seq and face_difference(back.image, still, face_mask) > 8


def test_a_bad_setting_changes_nothing(session):
    before, version = session.settings, session.version
    with pytest.raises(SettingError, match="opacity"):
        session.update({"bypass": True, "opacity": 2})
    with pytest.raises(SettingError, match="unknown setting"):
        session.update({"opacity": 0.5, "sharpness": 1})
    assert session.settings == before and session.version == version


def test_settings_reach_the_merge_and_the_marker_on_the_next_frame(session, face_mask):
    still = demo_still()
    session.update({"opacity": 0.0, "label": False})
    faded = frame_after(session, session.version)
    assert session.processor.merge_settings.opacity == 0.0 and session.marker.label is None
    # opacity 0 and no label: the input everywhere, watermark aside
    assert faded.info.faces == 1 and np.abs(faded.image.astype(int) - still).max() <= 3
    session.update({"opacity": 1.0, "label": True})
    again = frame_after(session, session.version, settle=2)
    assert face_difference(again.image, still, face_mask) > 8


def test_switching_target_keeps_the_feed_and_shows_the_old_face_until_the_new_one_is_ready(session, face_mask, tmp_path):
    photo_face = frame_after(session, session.version, settle=3)
    assert photo_face.target == str(PHOTO)
    # a target that must be loaded (not cached): its load is held until the test has seen frames meanwhile
    copy = tmp_path / "copy_of_demo.onnx"
    copy.write_bytes(MODEL.read_bytes())
    gate = threading.Event()
    real_open = session._loader._open
    session._loader._open = lambda path, forehead: (gate.wait(WAIT_S), real_open(path, forehead))[1]
    try:
        ticket = session.set_target(copy)
        during = session.preview.wait_for(lambda f: f.seq >= photo_face.seq + 5, WAIT_S)
        assert not ticket.done and during.target == str(PHOTO) and during.info.faces == 1
        assert session.state()["loading"] == str(copy)
        gate.set()
        assert ticket.wait(WAIT_S) and ticket.ok, ticket.error
    finally:
        session._loader._open = real_open
    model_face = frame_after(session, ticket.version, settle=3)
    assert model_face.target == str(copy) and session.state()["target"]["identity"] == "GRID corpus speaker s1"
    repeat = frame_after(session, ticket.version, settle=6)
    between = face_difference(model_face.image, photo_face.image, face_mask)
    assert between > 8 and face_difference(repeat.image, model_face.image, face_mask) < between / 4
    # back to the photo through the start-up list (n / p keys): it is cached, so no load
    assert session.step_target(-1) == f"model {PHOTO.name}"
    assert frame_after(session, session.version).target == str(PHOTO)


def test_a_target_that_cannot_be_used_is_reported_and_nothing_changes(session, tmp_path):
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not a picture")
    (tmp_path / "notes.txt").write_text("hello")
    before = frame_after(session, session.version)
    for path, why in ((junk, "cannot be decoded"), (tmp_path / "missing.onnx", "model file not found"),
                      (tmp_path / "notes.txt", "neither a model")):
        ticket = session.set_target(path)
        assert ticket.wait(WAIT_S) and ticket.ok is False and why in ticket.error and "\n" not in ticket.error
        assert session.last_error.startswith(f"cannot use {path}")
    after = session.preview.wait_for(lambda f: f.seq > before.seq + 2, WAIT_S)  # the loop goes on
    assert after.target == before.target == str(session.target.path)
    assert any(e.level == "error" and "junk.jpg" in e.message for e in session.test_events)


def test_outputs_switch_on_and_off_between_frames(session, tmp_path):
    RecordingCamera.frames = []
    session.set_virtual_camera(True)
    first = session.preview.wait_for(lambda f: session.outputs.vcam_status.startswith("on"), WAIT_S)
    assert first is not None and "recording-camera" in session.state()["outputs"]["virtual_camera"]["status"]
    seen = len(RecordingCamera.frames)
    session.preview.wait_for(lambda f: len(RecordingCamera.frames) > seen + 2, WAIT_S)
    session.set_virtual_camera(False)
    session.preview.wait_for(lambda f: session.outputs.vcam is None, WAIT_S)
    assert session.state()["outputs"]["virtual_camera"] == {"on": False, "status": "off"}
    stopped_at = len(RecordingCamera.frames)
    later = frame_after(session, session.version)
    session.preview.wait_for(lambda f: f.seq > later.seq + 2, WAIT_S)
    assert len(RecordingCamera.frames) == stopped_at and RecordingCamera.frames[0].size == 480 * 640 * 3

    path = tmp_path / "take.mp4"
    written = threading.Event()
    session.add_listener(lambda e: written.set() if e.message == f"wrote {path}" else None)
    session.start_recording(path)
    session.preview.wait_for(lambda f: session.outputs.record_frames >= 5, WAIT_S)
    assert session.state()["outputs"]["recording"]["on"] is True
    session.stop_recording()
    assert written.wait(WAIT_S) and path.exists()
    import cv2

    cap = cv2.VideoCapture(str(path))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) >= 5
    cap.release()


def test_figures_and_state_are_readable_while_it_runs(session):
    import json

    frame_after(session, session.version, settle=3)
    state = json.loads(json.dumps(session.state()))  # JSON as it is
    figures = state["figures"]
    assert state["running"] and figures["frames"] > 0 and figures["fps"] > 0
    assert figures["latency_p50_ms"] > 0 and figures["latency_p95_ms"] >= figures["latency_p50_ms"]
    assert figures["dropped"] >= 0 and state["settings"] == session.settings
    assert {"virtual_camera", "recording"} <= set(state["outputs"])


def test_the_source_is_switched_without_restarting_capture(session, tmp_path):
    import cv2

    from realtime.frames.demo_source import DemoSource

    other = tmp_path / "other"
    other.mkdir()
    flipped = cv2.flip(demo_still(), 1)
    cv2.imwrite(str(other / "flipped.png"), flipped)
    captured = session.figures()["captured"]
    session.set_source(str(other)).join(WAIT_S)
    frame = session.preview.wait_for(lambda f: np.array_equal(f.source, flipped), WAIT_S)
    assert frame is not None and session.running and session.figures()["captured"] > captured
    session.set_source("nowhere.mp4").join(WAIT_S)  # a source that cannot open: reported, the old one stays
    assert "cannot open source 'nowhere.mp4'" in session.last_error
    session.set_source("demo", opener=lambda: DemoSource(loop=True)).join(WAIT_S)
    assert session.preview.wait_for(lambda f: not np.array_equal(f.source, flipped), WAIT_S) is not None


def test_a_photo_option_rebuilds_the_photo_off_the_live_thread(session, face_mask):
    session.set_target(PHOTO).wait(WAIT_S)
    before = frame_after(session, session.version, settle=3)
    session.update({"forehead": 0.0})
    assert session.settings["forehead"] == 0.0
    rebuilt = session.preview.wait_for(lambda f: session.target.forehead == 0.0 and f.version == session.version
                                       and f.target == str(PHOTO), WAIT_S)
    assert rebuilt is not None and session.target.swapper.forehead == 0.0
    session.update({"forehead": 0.5})
    assert session.settings["forehead"] == 0.5 and before.target == str(PHOTO)


def test_the_command_line_is_a_front_end_of_the_session(tmp_path):
    """`swapcam live` builds a LiveSession; the window's hotkeys come from the table."""
    from swapcam import live_cli

    source = Path(live_cli.__file__).read_text()
    assert "LiveSession(" in source and "FaceSwapProcessor" not in source and "Pipeline(" not in source
