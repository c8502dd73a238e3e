"""`swapcam app` on Qt's offscreen platform: the real window, its real widgets, the real control API over HTTP,
a real live session behind them. Every wait is on a condition (a frame rendered after a command), never a sleep."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("PySide6")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QEventLoop, QMimeData, QPoint, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from tests.fixtures.sessions import MODEL, PHOTO, WAIT_S, face_difference  # noqa: E402
from tests.test_control_api import call  # noqa: E402

TOKEN = "app-test-token-0123456789"


def wait_until(condition, timeout: float = WAIT_S):
    """Run the Qt event loop until ``condition()`` is truthy; returns it (the timeout only bounds a broken run)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        value = condition()
        if value:
            return value
    raise AssertionError(f"not reached within {timeout} s: {condition}")


def open_app(tmp: Path, *extra: str):
    from swapcam import app_cli
    from swapcam.cli import build_parser

    parser, _ = build_parser("app")
    args = parser.parse_args(["--source", "demo", "--settings-file", str(tmp / "app.json"), "--targets",
                              str(tmp / "targets"), "--api", "127.0.0.1:0", "--api-token", TOKEN, *extra])
    run = app_cli.open_app(args)
    assert not isinstance(run, int)
    return run


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("app")
    (tmp / "targets").mkdir()
    return tmp


@pytest.fixture(scope="module")
def run(app_dir, still_folder):
    QApplication.instance() or QApplication(["swapcam-test"])
    opened = open_app(app_dir)
    yield opened
    if opened.window.isVisible():
        opened.window.close()
    opened.finish()


def shown_after(window, version: int, settle: int = 0):
    """The frame the preview widget painted with command ``version`` applied (``settle`` frames later)."""
    first = wait_until(lambda: window.preview.shown if window.preview.shown and window.preview.shown.version >= version else None)
    if settle:
        return wait_until(lambda: window.preview.shown if window.preview.shown.seq >= first.seq + settle else None)
    return first


def preview_pixels(window) -> np.ndarray:
    """What the preview widget shows on screen, as a BGR array."""
    from PySide6.QtGui import QImage

    image = window.preview.grab().toImage().convertToFormat(QImage.Format.Format_BGR888)
    h, w, stride = image.height(), image.width(), image.bytesPerLine()
    rows = np.frombuffer(image.constBits(), np.uint8, count=image.sizeInBytes()).reshape(h, stride)
    return rows[:, : w * 3].reshape(h, w, 3).copy()


def test_opens_on_the_demo_source_with_figures_and_the_gallery(run):
    window, session = run.window, run.session
    assert session.running and session.source.describe().startswith("built-in demo")
    shown = wait_until(lambda: window.preview.shown if window.preview.shown and window.preview.shown.info.faces else None)
    assert "built-in demo" in window.source_info.text() and shown.source is not None
    wait_until(lambda: "fps" in window.figures.text() and "– fps" not in window.figures.text())
    names = {e.name for e in window.gallery.entries.values()}
    assert {"demo.onnx", "london_063.jpg"} <= names
    assert "Face Research Lab London Set" in window.gallery.info.text()
    label = window.label_controls.controls["label"]
    assert label.isChecked() and "synthetic" in label.toolTip()
    assert not window.preview.grab().toImage().isNull()


def test_the_source_picker_reads_a_still_from_the_next_frame(run, still_folder):
    window, session = run.window, run.session
    window.choose_source(str(still_folder))
    still = cv2.imread(str(still_folder / "demo_still.png"))
    wait_until(lambda: window.preview.shown is not None and np.array_equal(window.preview.shown.source, still))
    assert session.running


def test_picking_from_the_gallery_and_by_the_api_changes_the_preview(run, face_mask):
    window, session = run.window, run.session
    photo = shown_after(window, session.version, settle=3)
    assert photo.target == str(PHOTO)
    before = preview_pixels(window)
    item = window.gallery.item_for(MODEL)
    QTest.mouseClick(window.gallery.list.viewport(), Qt.MouseButton.LeftButton, pos=window.gallery.list.visualItemRect(item).center())
    model = wait_until(lambda: window.preview.shown if window.preview.shown.target == str(MODEL) else None)
    model = shown_after(window, model.version, settle=3)
    after = preview_pixels(window)
    assert face_difference(model.image, photo.image, face_mask) > 8
    changed = (np.abs(after.astype(int) - before).max(-1) > 20).mean()
    assert changed > 0.005  # the widget itself shows another face (the face is a few % of the window)
    assert "GRID corpus speaker s1" in window.gallery.info.text()
    url = run.api.url
    status, answer = call(url + "/api/target", "POST", {"path": str(PHOTO)}, token=TOKEN)
    assert status == 200
    back = shown_after(window, answer["version"], settle=2)
    assert back.target == str(PHOTO) and face_difference(back.image, model.image, face_mask) > 8
    wait_until(lambda: window.gallery.list.currentItem() is window.gallery.item_for(PHOTO))


def test_bypass_from_its_check_box_lets_the_input_through(run, face_mask):
    window, session = run.window, run.session
    box = window.controls.controls["bypass"]
    QTest.mouseClick(box, Qt.MouseButton.LeftButton, pos=box.rect().center())
    assert session.settings["bypass"] is True
    passed = shown_after(window, session.version)
    assert passed.info.faces == 0 and face_difference(passed.image, passed.source, face_mask) < 2.5  # watermark +-2
    QTest.keyClick(window, "b")  # the same switch by its hotkey (the table's)
    assert session.settings["bypass"] is False
    assert wait_until(lambda: not box.isChecked())
    swapped = shown_after(window, session.version, settle=2)
    assert swapped.info.faces == 1 and face_difference(swapped.image, swapped.source, face_mask) > 8


def test_the_api_rejects_a_bad_token_and_a_bad_value_and_the_window_follows_good_ones(run):
    window, session = run.window, run.session
    url = run.api.url
    assert call(url + "/api/state", token="nope")[0] == 401
    status, answer = call(url + "/api/settings", "PATCH", {"opacity": 5}, token=TOKEN)
    assert status == 400 and "opacity: 5 is outside [0, 1]" in answer["error"]
    slider = window.controls.controls["opacity"].slider
    assert session.settings["opacity"] == 1.0 and slider.value() == slider.maximum()
    status, answer = call(url + "/api/settings", "PATCH", {"opacity": 0.7, "label": False}, token=TOKEN)
    assert status == 200
    wait_until(lambda: window.controls.controls["opacity"].value_label.text() == "0.7")
    assert not window.label_controls.controls["label"].isChecked()
    assert window.label_controls.warnings["label"].isVisibleTo(window)
    status, answer = call(url + "/api/settings", "PATCH", {"label": True}, token=TOKEN)
    wait_until(lambda: window.label_controls.controls["label"].isChecked())


def _drop(window, paths: list[Path]) -> None:
    """A drag of ``paths`` entering the window, then dropped (real Qt events into the window's handlers: Qt's
    offscreen platform has no drag-and-drop session to deliver them)."""
    from PySide6.QtGui import QDragEnterEvent

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    enter = QDragEnterEvent(QPoint(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    window.dragEnterEvent(enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    window.dropEvent(drop)
    assert drop.isAccepted()


def test_a_dropped_unreadable_file_is_rejected_and_a_good_photo_joins_the_gallery(run, app_dir, grace_hopper):
    window, session = run.window, run.session
    junk = app_dir / "broken.jpg"
    junk.write_bytes(b"\xff\xd8 this is not a JPEG")
    count, target = window.gallery.list.count(), session.target.path
    _drop(window, [junk])
    wait_until(lambda: "broken.jpg" in window.target_error.text())
    assert "truncated" in window.target_error.text() and window.gallery.list.count() == count
    assert session.target.path == target and "broken.jpg" in window.status.currentMessage()
    hopper = app_dir / "hopper.jpg"
    cv2.imwrite(str(hopper), grace_hopper)
    _drop(window, [hopper])
    wait_until(lambda: window.gallery.item_for(hopper) is not None)
    assert session.target.path == hopper and str(hopper) in window.extra_targets
    assert window.target_error.text() == ""


def test_the_output_window_and_a_screenshot_then_settings_are_saved_on_close(run, app_dir):
    from swapcam import app_cli

    window = run.window
    window.output_toggle.setChecked(True)
    wait_until(lambda: window.output_window is not None and window.output_window.view.shown is not None)
    assert window.output_window.windowFlags() & Qt.WindowType.WindowStaysOnTopHint
    window.layout_box.setCurrentIndex(0)  # swapped only
    shot = app_dir / "shot.png"
    app_cli._screenshot_when_ready(run.app, window, shot, time.monotonic(), 0.0)
    wait_until(lambda: not window.isVisible())
    picture = cv2.imread(str(shot))
    assert picture is not None and picture.shape[1] == window.width()
    saved = json.loads((app_dir / "app.json").read_text()) if (app_dir / "app.json").exists() else None
    assert saved is None  # written by finish(), after the window closed
    run.finish()
    saved = json.loads((app_dir / "app.json").read_text())
    assert saved["version"] == 1 and saved["settings"]["opacity"] == 0.7 and saved["layout"] == "swapped"
    assert saved["target"] == str(app_dir / "hopper.jpg") and saved["output_window"] is True
    assert saved["extra_targets"] == [str(app_dir / "hopper.jpg")]


def test_a_corrupt_or_outdated_settings_file_is_reported_and_replaced(app_dir, tmp_path):
    from swapcam.config import AppSettings, load_app_settings, save_app_settings

    path = tmp_path / "app.json"
    for text, why in (("{not json", "could not be used"), (json.dumps({"format": "swapcam app settings", "version": 0}),
                                                            "format version 0"), ("[]", "not a swapcam app settings")):
        path.write_text(text)
        settings, problems = load_app_settings(path)
        assert settings == AppSettings() and len(problems) == 1 and why in problems[0]
        assert not path.exists() and (tmp_path / "app.json.bad").read_text() == text
    save_app_settings(AppSettings(layout="swapped"), path)
    data = json.loads(path.read_text())
    data["settings"]["opacity"] = 9
    data["layout"] = "sideways"
    data["colour"] = 1
    path.write_text(json.dumps(data))
    settings, problems = load_app_settings(path)
    assert settings.settings["opacity"] == 1.0 and settings.layout == "side_by_side" and len(problems) == 3


def test_the_app_restores_what_it_saved_and_opens_with_a_broken_file(app_dir):
    QApplication.instance() or QApplication(["swapcam-test"])
    second = open_app(app_dir, "--source", "demo")
    try:
        window, session = second.window, second.session
        assert session.settings["opacity"] == 0.7 and window.preview.layout_mode == "swapped"
        assert session.target.path == app_dir / "hopper.jpg"
        assert window.gallery.item_for(app_dir / "hopper.jpg") is not None
        wait_until(lambda: window.preview.shown is not None)
    finally:
        window.close()
        second.finish()
    (app_dir / "app.json").write_text("{broken")
    third = open_app(app_dir)
    try:
        assert "could not be used" in third.window.status.currentMessage()
        assert third.session.settings["opacity"] == 1.0
    finally:
        third.window.close()
        third.finish()
    assert json.loads((app_dir / "app.json").read_text())["version"] == 1  # replaced by a good one
    shutil.rmtree(app_dir / "targets", ignore_errors=True)


def test_painting_keeps_pythons_reference_counts(run):
    """PySide6 6.12.0 on Python 3.11 drops a reference to None on every void call (a preview frame cost ~8)
    until the interpreter aborts; the pinned version must not."""
    import sys

    from PySide6.QtGui import QColor, QImage, QPainter

    image = QImage(64, 64, QImage.Format.Format_RGB32)
    before = sys.getrefcount(None)
    for _ in range(200):
        painter = QPainter(image)
        painter.fillRect(0, 0, 8, 8, QColor(0, 0, 0))
        painter.end()
    assert sys.getrefcount(None) >= before


def test_the_figures_line_says_when_landmarks_overlap_the_swap():
    from swapcam.gui.main_window import figures_text

    figures = {"fps": 59.7, "latency_p50_ms": 28.0, "latency_p95_ms": 46.2, "dropped": 3, "frames": 628}
    assert figures_text(figures) == "59.7 fps · latency p50 28 ms, p95 46 ms · dropped 3 · 628 frames"
    assert figures_text({**figures, "overlapping": True}).endswith("628 frames · overlapped")
    assert not figures_text({**figures, "overlapping": False}).endswith("overlapped")
