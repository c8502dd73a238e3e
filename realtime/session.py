"""The live session: the running pipeline, its settings and the commands that change them while it runs.

Every front-end drives one ``LiveSession`` and owns no pipeline logic: the ``swapcam live`` command line, the
preview window's hotkeys, the desktop app (``swapcam app``) and the local HTTP control API. Commands are
thread-safe and take effect on the next frame without restarting capture:

- ``update({"opacity": 0.8, ...})``: settings from the one table (``realtime.live_settings``), validated
  all-or-nothing, applied by the processing thread before it renders its next frame;
- ``set_target(path)``: a model, photo, folder of photos or video; loaded in a loader thread (the newest
  request wins), then switched in between two frames, so the old target stays on screen until the new one is
  ready; a target that cannot be used is reported (event + ticket), never raised into the loop;
- ``step_target(+1 / -1)``: the next / previous target of the start-up list (the window's n / p keys);
- ``set_source(spec)``: a camera, a video file or the demo; opened off the live thread, then read from the
  next frame on (the capture thread itself keeps running);
- ``set_virtual_camera(on)``, ``start_recording(path)``, ``stop_recording()``: outputs switched by the output
  thread between two frames; a file is finalised and signed (C2PA) in a thread of its own.

What the session shows: ``state()`` (JSON-friendly: target, settings, outputs, figures), ``figures()`` (fps,
latency p50/p95 ms over the last frames, frames, dropped), ``preview`` (the newest output frame and its
input, never a queue: a front-end that paints slower than the loop simply skips frames), and events
(``add_listener``) for what happened (a target loaded, an error, a file written).

Every frame the output sees is tagged with the command ``version`` it was rendered with and its target, so a
front-end (or a test) can wait for "the first frame rendered after my command" instead of sleeping.

Its parts live where their job is: targets are loaded by ``realtime.swap.target_loader``, the outputs are one
sink (``realtime.frames.outputs``), the preview a slot of one frame (``realtime.frames.preview``).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from realtime import live_settings
from realtime.frames.outputs import SessionOutputs
from realtime.frames.preview import PreviewFrame, PreviewSlot
from realtime.frames.sources import SwitchableSource
from realtime.pipeline import FrameInfo, Pipeline, PipelineStats
from realtime.swap.target_loader import Target, TargetLoader, TargetTicket, one_line, open_target


@dataclass(frozen=True)
class SessionOptions:
    """What stays fixed for a session's life: how faces are found and smoothed, how targets are opened,
    how the virtual camera is opened (``swapcam live``'s options other than the live settings)."""

    max_faces: int = 1
    largest_only: bool = False
    landmark_max_side: int = 1920
    min_cutoff: float = 1.0
    beta: float = 20.0
    mask_smoothing: float = 0.5
    color_smoothing: float = 0.2
    hold: int = 3
    fade: int = 6
    split: bool | None = None  # landmarks and swap in two threads; None: the pipeline's choice
    face_type: str | None = None
    crop_scale: float | None = None
    providers: tuple[str, ...] | None = None
    morph_value: float = 0.75
    threads: int = 0
    photo_resolution: int | None = None
    proportions: float | None = None
    vcam_format: str = "RGB"
    vcam_device: str | None = None
    vcam_backend: str | None = None
    # a video file processed as fast as it can be (--unpaced): the recording waits for the encoder and keeps
    # every frame; live (False): frames the encoder cannot keep up with are left out of the recording
    record_every_frame: bool = False


@dataclass(frozen=True)
class SessionEvent:
    """Something a person should hear about. level: 'info', 'warning' or 'error'; kind: 'target', 'source',
    'settings', 'output', 'run'."""

    level: str
    kind: str
    message: str


class _SessionProcessor:
    """The pipeline's processor: the session's face-swap processor, with pending commands applied before
    each frame is rendered (so every command lands between two frames) and each frame tagged."""

    def __init__(self, session: LiveSession) -> None:
        self._session = session
        self._proc = session.processor

    def _before(self, frame) -> None:
        self._session._apply_pending(frame.seq)

    def process(self, frame, timings):
        self._before(frame)
        return self._proc.process(frame, timings)

    def detect(self, frame, timings):
        return self._proc.detect(frame, timings)

    def render(self, frame, state, timings):
        self._before(frame)
        return self._proc.render(frame, state, timings)


class LiveSession:
    """See the module docstring.

    source: any frame source (wrapped so that ``set_source`` can replace it); targets: the start-up list of
    ``Target`` (already loaded: the command line reports their errors before anything runs) or paths to load;
    settings: live settings (defaults for those not given); sinks: the front-end's own sinks (an OpenCV
    window, a still writer); vcam: a VirtualCameraSink to start with (on), record: a video file to record from
    the start; log: called with every ``SessionEvent`` (besides the listeners); occlusion: the occlusion stage
    (``realtime.merging.occlusion.OcclusionMasker``) the setting 'occlusion' switches, or None (then the
    setting does nothing).
    """

    def __init__(self, source, targets: list, *, options: SessionOptions | None = None, settings: dict | None = None,
                 sinks: list = (), vcam=None, record: str | Path | None = None,
                 log: Callable[[SessionEvent], None] | None = None, landmarker=None, occlusion=None) -> None:
        from realtime.face.smoothing import LandmarkSmoother
        from realtime.marking.marker import OutputMarker
        from realtime.merging.merge import MergeSettings
        from realtime.processor import FaceSwapProcessor

        self.options = options or SessionOptions()
        values = live_settings.defaults()
        values.update(live_settings.validate(dict(settings or {})))
        self._settings = values
        self._listeners: list[Callable[[SessionEvent], None]] = [log] if log else []
        self.events: deque[SessionEvent] = deque(maxlen=50)
        self._lock = threading.Lock()
        self._loader = TargetLoader(self._open_target, self._target_loaded, self._target_failed)
        loaded = [t if isinstance(t, Target) else self._open_target(Path(t), values["forehead"]) for t in targets]
        if not loaded:
            raise ValueError("a live session needs at least one target")
        for target in loaded:
            self._loader.add(self._loader.key(target.path, target.kind, target.forehead or 0.0), target, pin=True)
        self.playlist = [t.path for t in loaded]
        self.target: Target = loaded[0]
        self.last_error: str | None = None
        o = self.options
        merge = MergeSettings(**{s.field: values[s.name] for s in live_settings.SETTINGS if s.applies == "merge"})
        self.processor = FaceSwapProcessor(
            [self.target.swapper], landmarker=landmarker, max_faces=o.max_faces, largest_only=o.largest_only,
            merge=merge.validate(), smoother=LandmarkSmoother(o.min_cutoff, o.beta, enabled=values["smoothing"]),
            mask_smoothing=o.mask_smoothing, color_smoothing=o.color_smoothing, hold=o.hold, fade=o.fade,
            landmark_max_side=o.landmark_max_side, occlusion=occlusion)
        for s in live_settings.SETTINGS:
            if s.applies == "processor":
                setattr(self.processor, s.field, values[s.name])
        self.marker = OutputMarker.for_swappers(lambda: self.processor.swapper, label=values["label"])
        self.source = SwitchableSource(source)
        self.preview = PreviewSlot()
        self.outputs = SessionOutputs(
            list(sinks), preview=self._to_preview, say=self._say, fps=lambda: self.source.fps,
            swapper=lambda: self.processor.swapper, vcam=vcam, record=Path(record) if record else None,
            vcam_options={"fmt": o.vcam_format, "device": o.vcam_device, "backend": o.vcam_backend},
            record_live=not o.record_every_frame)
        self.pipeline = Pipeline(self.source, _SessionProcessor(self), [self.outputs], split=o.split, marker=self.marker)
        self.version = 0  # commands applied or queued so far
        self._pending: dict[str, object] = {}
        self._pending_target: tuple[Target, TargetTicket | None] | None = None
        self._applied_version = 0
        self._tags: dict[int, tuple[int, str]] = {}
        self._thread: threading.Thread | None = None
        self._stats: PipelineStats | None = None
        self._running = False
        self._source_request: object | None = None

    # -- events -------------------------------------------------------------------------------------
    def add_listener(self, listener: Callable[[SessionEvent], None]) -> None:
        self._listeners.append(listener)

    def _say(self, level: str, kind: str, message: str) -> None:
        event = SessionEvent(level, kind, message)
        self.events.append(event)
        if level == "error":
            self.last_error = message
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a front-end's listener never breaks the loop
                pass

    # -- settings -----------------------------------------------------------------------------------
    @property
    def settings(self) -> dict[str, object]:
        """The current settings (a copy; applied on the next frame, or already)."""
        with self._lock:
            return dict(self._settings)

    def update(self, changes: dict) -> dict[str, object]:
        """Change settings (any subset of ``live_settings.SETTINGS``) from the next frame on; returns the new
        settings. SettingError (one line) for an unknown name or a bad value, and then nothing changes."""
        checked = live_settings.validate(changes)
        reload_photo = False
        with self._lock:
            changed = {k: v for k, v in checked.items() if self._settings[k] != v}
            self._settings.update(checked)
            for name, value in changed.items():
                if live_settings.BY_NAME[name].applies == "photo":
                    reload_photo = True
                else:
                    self._pending[name] = value
            if changed:
                self.version += 1
            settings = dict(self._settings)
        if changed:
            self._say("info", "settings", ", ".join(f"{k} {v}" for k, v in changed.items()))
        if reload_photo and self.target.kind == "photo":
            self.set_target(self.target.path)
        return settings

    def toggle(self, name: str) -> str:
        """Flip a bool setting (a hotkey); returns what a status line shows."""
        value = not self.settings[name]
        self.update({name: value})
        return f"{live_settings.BY_NAME[name].label}: {'on' if value else 'off'}"

    def _apply_pending(self, seq: int) -> None:
        """The processing thread, before rendering frame ``seq``: apply queued settings and a loaded target."""
        with self._lock:
            pending, self._pending = self._pending, {}
            switch, self._pending_target = self._pending_target, None
            version = self.version
        for name, value in pending.items():
            self._apply(live_settings.BY_NAME[name], value)
        if switch is not None:
            target, ticket = switch
            self.processor.use_swapper(target.swapper)
            self.target = target
            if ticket is not None:
                ticket.finish(True, version=version)
        with self._lock:
            self._applied_version = version
            self._tags[seq] = (version, str(self.target.path))

    def _apply(self, setting, value) -> None:
        """Put one setting where it applies (``live_settings`` module docstring)."""
        if setting.applies == "merge":
            self.processor.set_merge(**{setting.field: value})
            return
        owner = {"processor": self.processor, "smoothing": self.processor.smoother, "marker": self.marker}[setting.applies]
        setter = getattr(owner, f"set_{setting.field}", None)
        if callable(setter):
            setter(value)
        else:
            setattr(owner, setting.field, value)

    def _to_preview(self, frame: np.ndarray, info: FrameInfo) -> None:
        """The output thread: the frame to the preview, tagged with the version and target it was rendered with."""
        with self._lock:
            tag = self._tags.pop(info.seq, None)
            for old in [s for s in self._tags if s < info.seq]:
                del self._tags[old]
            version, target = tag if tag is not None else (self._applied_version, str(self.target.path))
        self.preview.put(PreviewFrame(info.seq, frame, info.source_image, info, target, version))

    # -- targets ------------------------------------------------------------------------------------
    def _open_target(self, path: Path, forehead: float) -> Target:
        return open_target(path, self.options, forehead)

    def set_target(self, path: str | Path) -> TargetTicket:
        """Switch to the target at ``path`` once it is loaded (see the module docstring); never raises."""
        from realtime.swap.model_contract import ModelContractError
        from realtime.swap.swappers import swapper_kind

        path = Path(path).absolute()
        ticket = TargetTicket(path)
        try:
            kind = swapper_kind(path)
            if not path.exists():
                raise ModelContractError(f"{'model file' if kind == 'model' else 'photo'} not found: {path}")
        except ModelContractError as exc:
            self._target_failed(path, str(exc), ticket)
            return ticket
        forehead = float(self.settings["forehead"])
        key = self._loader.key(path, kind, forehead)
        target = self._loader.cached(key)
        if target is not None:
            self._target_loaded(target, ticket)
        else:
            self._say("info", "target", f"loading {path.name} (the current target stays until it is ready)")
            self._loader.request(key, path, forehead, ticket)
        return ticket

    def step_target(self, step: int) -> str:
        """Switch to the next (+1) or previous (-1) target of the start-up list; returns a status line."""
        paths = self.playlist
        here = paths.index(self.target.path) if self.target.path in paths else -1
        path = paths[(here + step) % len(paths)]
        self.set_target(path)
        return f"model {path.name}"

    @property
    def loading(self) -> Path | None:
        """The target being loaded now, if any."""
        return self._loader.loading

    def _target_loaded(self, target: Target, ticket: TargetTicket | None) -> None:
        with self._lock:
            replaced, self._pending_target = self._pending_target, (target, ticket)
            self.version += 1
        if replaced is not None and replaced[1] is not None:
            replaced[1].finish(False, f"{replaced[0].path}: another target was asked for before it was shown")
        if not self._running and ticket is not None:  # no frame will come to apply it: apply it now
            self._apply_pending(-1)
        self._say("info", "target", f"target {target.path.name}: {target.swapper.describe()}")

    def _target_failed(self, path: Path, message: str, ticket: TargetTicket | None) -> None:
        if ticket is not None:
            ticket.finish(False, message)
        self._say("error", "target", f"cannot use {path}: {message}")

    # -- source -------------------------------------------------------------------------------------
    def set_source(self, spec: str, *, width: int | None = 640, height: int | None = 480, fps: float | None = 30.0,
                   opener: Callable[[], object] | None = None) -> threading.Thread:
        """Read from another source (camera index or path, video file, 'demo'), opened in a thread of its own
        (looped, paced like a camera); the old one keeps running until the new one is open. Starts the loop
        again if it had ended. Returns the opening thread (``join`` it to wait)."""
        from realtime.frames.sources import open_source

        def work() -> None:
            try:
                source = opener() if opener is not None else open_source(spec, width=width, height=height, fps=fps,
                                                                         realtime=True, loop=True)
            except Exception as exc:
                self._say("error", "source", f"cannot open source {spec!r}: {one_line(exc)}")
                return
            self.source.switch(source)
            self._say("info", "source", f"source: {source.describe()}")
            if self._thread is not None and not self._running:
                self.start()

        thread = threading.Thread(target=work, name="source-opener", daemon=True)
        thread.start()
        return thread

    @property
    def fps(self) -> float:
        return self.source.fps

    # -- outputs ------------------------------------------------------------------------------------
    def set_virtual_camera(self, on: bool) -> None:
        """Send the output to a virtual camera (on) or stop (off), from the next frame; failures are reported
        in ``state()['outputs']`` and as an event."""
        self.outputs.set_vcam(on)

    def start_recording(self, path: str | Path) -> None:
        """Record the output to a video file from the next frame (a recording in progress is finished first)."""
        self.outputs.set_record(Path(path))

    def stop_recording(self) -> None:
        """Finish the recording (finalised and signed in a thread of its own; an event says when it is written)."""
        self.outputs.set_record(None)

    # -- running ------------------------------------------------------------------------------------
    @property
    def split(self) -> bool:
        """Two processing threads (split or adaptive)."""
        return self.pipeline.split

    @property
    def pipelining(self) -> str:
        """serial, split or adaptive (``realtime.pipeline.choose_pipelining``)."""
        return self.pipeline.pipelining

    @property
    def running(self) -> bool:
        return self._running

    def run(self, max_frames: int | None = None) -> PipelineStats:
        """Run the live loop in this thread until the source ends, ``max_frames`` frames are out, ``stop()`` or
        Ctrl-C; outputs are finished (files finalised and signed) before it returns."""
        self._running = True
        try:
            self._apply_pending(-1)
            self._stats = self.pipeline.run(max_frames=max_frames)
        finally:
            self._running = False
        return self._stats

    def start(self, max_frames: int | None = None) -> None:
        """Run the live loop in a thread of its own (the app); ``stop()`` and ``join()`` end it."""
        if self._running:
            return

        def work() -> None:
            stats = self.run(max_frames)
            detail = f" ({'; '.join(stats.errors)})" if stats.errors else ""
            level = "error" if stats.errors else "info"
            self._say(level, "run", f"the live loop ended: {stats.ended_by}{detail}")

        self._running = True  # before the thread runs: a command right now is queued for its first frame
        self._thread = threading.Thread(target=work, name="live-session", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the loop to end (thread-safe); nothing more is output after this."""
        self.pipeline.stop()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def close(self) -> None:
        """Stop the loop, wait for it and for files being finished, release the landmarker."""
        self.stop()
        self.join(30.0)
        self._loader.join(30.0)
        self.outputs.join_finishers()
        self.processor.close()

    # -- what a front-end shows ---------------------------------------------------------------------
    def figures(self) -> dict[str, float]:
        """fps and latency p50/p95 (ms) over the last frames, frames out and dropped so far in this run, and
        whether landmarks and swap overlap now (``overlapping``)."""
        figures = self.pipeline.live_figures()
        return {k: (None if isinstance(v, float) and v != v else v) for k, v in figures.items()}

    def state(self) -> dict:
        """Everything a front-end shows, JSON-friendly."""
        settings = self.settings
        loading = self.loading
        return {
            "running": self._running,
            "source": self.source.describe(),
            "target": self.target.as_dict(),
            "loading": str(loading) if loading else None,
            "playlist": [str(p) for p in self.playlist],
            "settings": settings,
            "bypass": settings["bypass"],
            "outputs": self.outputs.describe(),
            "figures": self.figures(),
            "version": self.version,
            "last_error": self.last_error,
        }
