"""The app's main window: preview with figures, source, target gallery, swap and merge controls, outputs.

Everything it does goes through the ``LiveSession`` (commands in, state, preview frames and events out);
the window keeps no pipeline logic. What it remembers between runs is an ``AppSettings`` (``app_settings()``),
saved by ``swapcam app`` when the window closes.
"""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from realtime import live_settings
from realtime.swap.targets import TargetEntry, describe_entry
from swapcam.config import AppSettings
from swapcam.gui.controls import SettingsPanel
from swapcam.gui.gallery import TargetGallery
from swapcam.gui.preview import LAYOUTS, FrameBridge, FrameView, OutputWindow

RESOLUTIONS = ((640, 480), (1280, 720), (1920, 1080))
FRAME_RATES = (15, 30, 60)
VIDEO_FILTER = "Videos (*.mp4 *.avi *.mov *.mkv *.webm *.m4v)"
TARGET_FILTER = "Models and photos (*.onnx *.dfm *.jpg *.jpeg *.png *.webp *.bmp *.mp4 *.mov *.mkv *.webm)"


class _Cameras(QObject):
    found = Signal(object)  # list[CameraMode]
    virtual_camera = Signal(bool, str)  # (one exists, its name or why not and how to get one)


def figures_text(figures: dict) -> str:
    """'29.8 fps · latency p50 31 ms, p95 40 ms · dropped 3 · 1234 frames' (dashes where not yet known), and
    ' · overlapped' while the landmarks of the next frame overlap the swap of this one."""
    def ms(v):
        return "–" if v is None else f"{v:.0f}"

    fps = figures.get("fps")
    return (f"{'–' if not fps else f'{fps:.1f}'} fps · latency p50 {ms(figures.get('latency_p50_ms'))} ms, "
            f"p95 {ms(figures.get('latency_p95_ms'))} ms · dropped {figures.get('dropped', 0)} · "
            f"{figures.get('frames', 0)} frames" + (" · overlapped" if figures.get("overlapping") else ""))


class MainWindow(QMainWindow):
    """See the module docstring. ``saved``: what the last run remembered; ``gallery_entries``: the targets found
    at start; ``source_spec``: the source the session was opened with."""

    def __init__(self, session, saved: AppSettings, gallery_entries: list[TargetEntry], source_spec: str) -> None:
        super().__init__()
        self.session = session
        self.saved = saved
        self.source_spec = source_spec
        self.extra_targets = [p for p in saved.extra_targets]
        self._dropped: set[str] = set()
        self._shown_version = -1
        self.setWindowTitle("swapcam")
        self.setAcceptDrops(True)
        self.bridge = FrameBridge(session.preview, session)
        self.bridge.frame_ready.connect(self._on_frame)
        self.bridge.event.connect(self._on_event)
        self.bridge.ticket_done.connect(self._on_ticket)
        self.output_window: OutputWindow | None = None

        self.preview = FrameView()
        self.preview.setObjectName("preview")
        self.preview.layout_mode = saved.layout
        self.figures = QLabel(figures_text({}))
        self.figures.setObjectName("figures")
        self.layout_box = QComboBox()
        for key, text in LAYOUTS.items():
            self.layout_box.addItem(text, key)
        self.layout_box.setCurrentIndex(list(LAYOUTS).index(saved.layout))
        self.layout_box.currentIndexChanged.connect(self._layout_changed)
        under = QHBoxLayout()
        under.addWidget(self.figures, 1)
        under.addWidget(QLabel("Preview:"))
        under.addWidget(self.layout_box)
        left = QVBoxLayout()
        left.addWidget(self.preview, 1)
        left.addLayout(under)

        panel = QWidget()
        right = QVBoxLayout(panel)
        right.addWidget(self._source_group())
        right.addWidget(self._target_group(gallery_entries))
        self.controls = SettingsPanel(("swap",), self._update)
        right.addWidget(self.controls)
        right.addWidget(self._output_group())
        self.merge_controls = SettingsPanel(("merge",), self._update)
        right.addWidget(self.merge_controls)
        right.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(panel)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(400)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        central = QWidget()
        row = QHBoxLayout(central)
        row.addLayout(left, 1)
        row.addWidget(scroll)
        self.setCentralWidget(central)
        self.status = self.statusBar()
        for key, name in live_settings.HOTKEYS.items():  # the same hotkeys as the preview window of `swapcam live`
            QShortcut(QKeySequence(key), self, activated=lambda n=name: self.session.toggle(n))

        self._show_all_settings()
        self.gallery.show_current(session.target.path)
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._tick)
        self.timer.start(250)
        if saved.geometry:
            self.setGeometry(*saved.geometry)
        else:
            self.resize(1400, 860)
        if saved.output_window:
            self.output_toggle.setChecked(True)
        if saved.virtual_camera:
            self.vcam_toggle.setChecked(True)

    # -- building ---------------------------------------------------------------------------------
    def _source_group(self) -> QGroupBox:
        box = QGroupBox("Source")
        form = QFormLayout(box)
        self.source_box = QComboBox()
        self.source_box.setObjectName("source")
        self.source_box.addItem("Built-in demo (no camera needed)", "demo")
        self.source_box.addItem("Video file…", "file")
        if self.source_spec not in ("demo", "auto"):
            self.source_box.insertItem(0, self._source_name(self.source_spec), self.source_spec)
            self.source_box.setCurrentIndex(0)
        self.source_box.activated.connect(self._source_chosen)
        self.mode_box = QComboBox()
        for w, h in RESOLUTIONS:
            for fps in FRAME_RATES:
                self.mode_box.addItem(f"{w}x{h} @ {fps} fps", (w, h, fps))
        wanted = (self.saved.width, self.saved.height, int(self.saved.fps))
        modes = [self.mode_box.itemData(i) for i in range(self.mode_box.count())]
        self.mode_box.setCurrentIndex(modes.index(wanted) if wanted in modes else modes.index((640, 480, 30)))
        self.mode_box.activated.connect(lambda _: self._source_chosen(self.source_box.currentIndex()))
        self.source_info = QLabel(self.session.source.describe())
        self.source_info.setWordWrap(True)
        form.addRow("Camera / file", self.source_box)
        form.addRow("Camera mode", self.mode_box)
        form.addRow(self.source_info)
        self._cameras = _Cameras()
        self._cameras.found.connect(self._cameras_found)
        self._cameras.virtual_camera.connect(self._virtual_camera_probed)
        self._vcam_note = ""
        threading.Thread(target=self._probe_cameras, daemon=True).start()
        return box

    @staticmethod
    def _source_name(spec: str) -> str:
        if spec.isdigit() or spec.startswith("/dev/video"):
            return f"Camera {spec}"
        return f"Video {Path(spec).name}"

    def _probe_cameras(self) -> None:
        from realtime.frames.sources import probe_cameras

        try:
            found = probe_cameras(self.saved.width, self.saved.height, self.saved.fps)
        except Exception:  # a driver that misbehaves while probing: no camera to list
            found = []
        self._cameras.found.emit(found)
        from realtime.frames.sinks import virtual_camera_available

        try:
            ok, why = virtual_camera_available(self.session.options.vcam_format, self.saved.width, self.saved.height)
        except Exception as exc:
            ok, why = False, str(exc)
        self._cameras.virtual_camera.emit(ok, why)

    def _virtual_camera_probed(self, ok: bool, why: str) -> None:
        from realtime.frames.sinks import how_to_get_virtual_camera

        self._vcam_note = f" — {why} is there" if ok else f" — none on this machine; to get one, {how_to_get_virtual_camera()}"
        self.vcam_toggle.setToolTip(why)  # the whole story

    def _cameras_found(self, cameras: list) -> None:
        for i, cam in enumerate(cameras):
            if self.source_box.findData(cam.device) < 0:
                self.source_box.insertItem(i, f"Camera {cam.device} ({cam.width}x{cam.height} @ {cam.fps:.0f} fps)",
                                           cam.device)
        if not cameras:
            self.source_info.setText(self.session.source.describe() + "\nNo camera opens on this machine.")

    def _target_group(self, entries: list[TargetEntry]) -> QGroupBox:
        box = QGroupBox("Target (who you become)")
        layout = QVBoxLayout(box)
        self.gallery = TargetGallery(self.pick_target)
        self.gallery.set_entries(entries)
        self.target_error = QLabel()
        self.target_error.setObjectName("target_error")
        self.target_error.setWordWrap(True)
        self.target_error.setStyleSheet("color: #b00020;")
        add = QPushButton("Add photo or model…")
        add.clicked.connect(self._add_clicked)
        layout.addWidget(self.gallery)
        layout.addWidget(self.target_error)
        layout.addWidget(add)
        return box

    def _output_group(self) -> QGroupBox:
        box = QGroupBox("Outputs")
        layout = QVBoxLayout(box)
        self.vcam_toggle = QCheckBox("Virtual camera (Zoom, Meet, OBS pick it as a webcam)")
        self.vcam_toggle.setObjectName("virtual_camera")
        self.vcam_toggle.toggled.connect(self.session.set_virtual_camera)
        self.vcam_status = QLabel("off")
        self.vcam_status.setWordWrap(True)
        self.vcam_status.setStyleSheet("color: #555; font-size: 11px;")
        self.record_path = QLineEdit(self.saved.record_path)
        self.record_button = QPushButton("Record")
        self.record_button.setObjectName("record")
        self.record_button.setCheckable(True)
        self.record_button.toggled.connect(self._record_toggled)
        record_row = QHBoxLayout()
        record_row.addWidget(self.record_path, 1)
        record_row.addWidget(self.record_button)
        self.record_status = QLabel("not recording")
        self.record_status.setStyleSheet("color: #555; font-size: 11px;")
        self.output_toggle = QCheckBox("Output window (always on top, for OBS window capture)")
        self.output_toggle.setObjectName("output_window")
        self.output_toggle.toggled.connect(self._output_window_toggled)
        layout.addWidget(self.vcam_toggle)
        layout.addWidget(self.vcam_status)
        layout.addWidget(QLabel("Record to file:"))
        layout.addLayout(record_row)
        layout.addWidget(self.record_status)
        layout.addWidget(self.output_toggle)
        self.label_controls = SettingsPanel(("output",), self._update)
        layout.addWidget(self.label_controls)
        return box

    # -- commands -----------------------------------------------------------------------------------
    def _update(self, changes: dict) -> None:
        try:
            self.session.update(changes)
        except live_settings.SettingError as exc:
            self._error(str(exc))
        self._show_all_settings()

    def _show_all_settings(self) -> None:
        values = self.session.settings
        for panel in (self.controls, self.merge_controls, self.label_controls):
            panel.show_settings(values)
        self._shown_version = self.session.version

    def pick_target(self, path: Path) -> None:
        """Switch to ``path`` (a gallery pick or a drop); the answer comes back through ``_on_ticket``."""
        self.target_error.clear()
        self.bridge.watch(self.session.set_target(path))
        self.gallery.show_current(self.session.target.path, loading=path)

    def add_dropped(self, paths: list[Path]) -> None:
        """Targets dropped onto the window (or added with the button): each is tried; the ones that load join
        the gallery (and are remembered), the others are reported."""
        for path in paths:
            entry = describe_entry(path)
            if entry.error:
                self._target_failed(path, entry.error)
                continue
            self._dropped.add(str(path.resolve()))
            self.pick_target(path)

    def _add_clicked(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Add a photo or a model", "", TARGET_FILTER)
        if name:
            self.add_dropped([Path(name)])

    def _source_chosen(self, index: int) -> None:
        spec = self.source_box.itemData(index)
        if spec == "file":
            name, _ = QFileDialog.getOpenFileName(self, "Play a video file", "", VIDEO_FILTER)
            if not name:
                return
            spec = name
            if self.source_box.findData(spec) < 0:
                self.source_box.insertItem(0, self._source_name(spec), spec)
            self.source_box.setCurrentIndex(self.source_box.findData(spec))
        self.choose_source(spec)

    def choose_source(self, spec: str) -> None:
        """Read from ``spec`` ('demo', a camera, a video file) in the mode picked (opened off the GUI thread)."""
        width, height, fps = self.mode_box.currentData()
        self.source_spec = spec
        self.source_info.setText(f"opening {spec}…")
        self.session.set_source(spec, width=width, height=height, fps=fps)

    def _record_toggled(self, on: bool) -> None:
        if on:
            self.session.start_recording(Path(self.record_path.text().strip() or "swapcam_recording.mp4"))
            self.record_button.setText("Stop")
        else:
            self.session.stop_recording()
            self.record_button.setText("Record")

    def _output_window_toggled(self, on: bool) -> None:
        if on and self.output_window is None:
            self.output_window = OutputWindow()
            self.output_window.closed.connect(lambda: self.output_toggle.setChecked(False))
            self.output_window.show()
        elif not on and self.output_window is not None:
            window, self.output_window = self.output_window, None
            window.closed.disconnect()
            window.close()

    def _layout_changed(self, index: int) -> None:
        self.preview.layout_mode = self.layout_box.itemData(index)
        frame = self.session.preview.latest()
        if frame is not None:
            self.preview.show_frame(frame)

    # -- what the session says ------------------------------------------------------------------------
    def _on_frame(self) -> None:
        frame = self.bridge.take()
        if frame is None:
            return
        self.preview.show_frame(frame)
        if self.output_window is not None:
            self.output_window.show_frame(frame)

    def _error(self, message: str) -> None:
        self.status.setStyleSheet("color: #b00020;")
        self.status.showMessage(message)

    def _on_event(self, event) -> None:
        if event.level == "error":
            self._error(event.message)
        else:
            self.status.setStyleSheet("")
            self.status.showMessage(event.message, 8000)
        if event.kind == "source":
            self.source_info.setText(self.session.source.describe() if event.level == "info" else event.message)

    def _target_failed(self, path: Path, message: str) -> None:
        self._dropped.discard(str(Path(path).resolve()))
        self.target_error.setText(f"Cannot use {Path(path).name}: {message}")
        self._error(f"cannot use {path}: {message}")
        self.gallery.show_current(self.session.target.path, loading=self.session.loading)

    def _on_ticket(self, ticket) -> None:
        if not ticket.ok:
            self._target_failed(ticket.path, ticket.error or "it could not be loaded")
            return
        key = str(ticket.path.resolve())
        if key in self._dropped:
            self._dropped.discard(key)
            self.gallery.add(describe_entry(ticket.path))
            if str(ticket.path) not in self.extra_targets:
                self.extra_targets.append(str(ticket.path))
        self.target_error.clear()
        self.gallery.show_current(self.session.target.path, loading=self.session.loading)

    def _tick(self) -> None:
        state = self.session.state()
        self.figures.setText(figures_text(state["figures"]) + f" · {Path(state['target']['path']).name}")
        outputs = state["outputs"]
        vcam = outputs["virtual_camera"]
        self.vcam_status.setText(vcam["status"] + (self._vcam_note if vcam["status"] == "off" else ""))
        if vcam["on"] != self.vcam_toggle.isChecked():
            self.vcam_toggle.blockSignals(True)
            self.vcam_toggle.setChecked(vcam["on"])
            self.vcam_toggle.blockSignals(False)
        rec = outputs["recording"]
        self.record_status.setText(f"{rec['status']}" + (f" — {rec['frames']} frames" if rec["frames"] else ""))
        if rec["on"] != self.record_button.isChecked():
            self.record_button.blockSignals(True)
            self.record_button.setChecked(rec["on"])
            self.record_button.setText("Stop" if rec["on"] else "Record")
            self.record_button.blockSignals(False)
        if state["version"] != self._shown_version:  # a change from the API or a hotkey
            self._show_all_settings()
            self.gallery.show_current(self.session.target.path, loading=self.session.loading)

    # -- drag and drop, closing -------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.add_dropped(paths)

    def app_settings(self) -> AppSettings:
        """What to remember for the next run."""
        g = self.geometry()
        width, height, fps = self.mode_box.currentData()
        outputs = self.session.outputs.describe()
        return AppSettings(settings=self.session.settings, source=self.source_spec, width=width, height=height,
                           fps=float(fps), target=str(self.session.target.path), extra_targets=self.extra_targets,
                           layout=self.preview.layout_mode, record_path=self.record_path.text().strip() or
                           "swapcam_recording.mp4", output_window=self.output_window is not None,
                           virtual_camera=bool(outputs["virtual_camera"]["on"]), geometry=[g.x(), g.y(), g.width(), g.height()])

    def closeEvent(self, event) -> None:
        self.final_settings = self.app_settings()  # what `swapcam app` saves once the window is gone
        self.timer.stop()
        if self.output_window is not None:
            self.output_window.closed.disconnect()
            self.output_window.close()
        self.bridge.close()
        super().closeEvent(event)
