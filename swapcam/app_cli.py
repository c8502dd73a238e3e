"""`swapcam app`: the desktop window over a live session (PySide6).

Takes every `swapcam live` option (those of the OpenCV window are ignored; --sink vcam starts the virtual
camera, --sink file records to --output) plus the app's own. What is not given on the command line comes
from the settings the window saved last time (``~/.config/swapcam/app.json``), else the defaults: the
one-photo swap of the shipped photo, the first webcam that opens, else the built-in demo.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from swapcam.live_cli import configure_parser as live_options

    live_options(parser)
    g = parser.add_argument_group("app")
    g.add_argument("--targets", type=Path, default=None, metavar="DIR",
                   help="your own folder of photos and models for the gallery (default: ~/.local/share/swapcam/targets)"
                        "%(default).0s")
    g.add_argument("--settings-file", type=Path, default=None, metavar="JSON",
                   help="where the window's settings are kept (default: ~/.config/swapcam/app.json)%(default).0s")
    g.add_argument("--fresh", action="store_true", help="start from the defaults, not from the saved settings")
    g.add_argument("--screenshot", type=Path, default=None, metavar="PNG",
                   help="write a picture of the window to this PNG (after --quit-after seconds, at the first frame "
                        "with a face swapped from then on), then quit; saved settings are left as they were; "
                        "without a display the window is drawn off-screen%(default).0s")
    g.add_argument("--quit-after", type=float, default=None, metavar="SECONDS",
                   help="close the window after this many seconds (with --screenshot: take it then)%(default).0s")


def _say(text: str) -> None:
    print(f"swapcam app: {text}", flush=True)


def _warn(text: str) -> None:
    print(f"swapcam app: warning: {text}", file=sys.stderr, flush=True)


def _given(args: argparse.Namespace, parser_defaults: dict, name: str) -> bool:
    return getattr(args, name, None) != parser_defaults.get(name)


def _settings(args, saved, defaults: dict) -> dict:
    """The saved live settings, with the ones given on the command line on top."""
    from realtime import live_settings

    values = dict(saved.settings)
    from_command_line = live_settings.from_args(args)
    for s in live_settings.SETTINGS:
        if s.arg and _given(args, defaults, s.arg):
            values[s.name] = from_command_line[s.name]
    return values


def _targets(args, saved, options, forehead: float) -> list:
    """--model if given, else the target saved last time (then the defaults), loaded and described."""
    from realtime.swap.target_loader import open_target
    from swapcam.live_cli import _default_models, load_targets

    if args.model:
        return load_targets(args, options, forehead)
    paths = _default_models()
    if saved.target and Path(saved.target).exists():
        try:
            first = open_target(Path(saved.target), options, forehead)
            _say(f"target {first.path} (from the last run)")
            return [first] + [open_target(p, options, forehead) for p in paths if p.resolve() != first.path.resolve()]
        except ValueError as exc:
            _warn(f"the last run's target {saved.target} cannot be used ({exc}); using the default")
    return load_targets(args, options, forehead)


def _source(args, saved, defaults: dict):
    """(source, spec): --source if given, else the saved one, else the first webcam, else the demo; looped and
    paced like a camera. A saved source that no longer opens falls back to the demo, with a warning."""
    from realtime.frames.demo_source import DemoSource
    from realtime.frames.sources import SourceError, first_webcam, open_source

    spec = args.source if _given(args, defaults, "source") else saved.source
    width = args.width if _given(args, defaults, "width") else saved.width
    height = args.height if _given(args, defaults, "height") else saved.height
    fps = args.fps if _given(args, defaults, "fps") else saved.fps
    if spec == "auto":
        cam = first_webcam(width=width, height=height, fps=fps, mjpg=not args.no_mjpg)
        if cam is not None:
            return cam, str(cam.device)
        return DemoSource(fps=fps, loop=True), "demo"
    try:
        return open_source(spec, width=width, height=height, fps=fps, mjpg=not args.no_mjpg, realtime=True,
                           loop=True), spec
    except SourceError as exc:
        if _given(args, defaults, "source"):
            raise
        _warn(f"the last run's source cannot be opened ({exc}); showing the built-in demo")
        return DemoSource(fps=fps, loop=True), "demo"


def _gallery(args, session, saved) -> list:
    """The gallery's entries: shipped models and photos, the user's folder, targets dropped in earlier runs (those
    still there) and the start-up targets."""
    from realtime.swap.targets import scan_targets
    from swapcam.live_cli import gallery_folders

    dropped = [Path(p) for p in saved.extra_targets if Path(p).exists()]
    return scan_targets(gallery_folders(args.targets), extra=dropped + list(session.playlist))


def _screenshot_when_ready(app, window, path: Path, started: float, quit_after: float) -> None:
    """Grab the window at the first repaint with a face swapped once ``quit_after`` seconds have passed (the
    preview must show the swap, not the first frame of a warm-up), then quit; gives up after 60 s more."""
    from PySide6.QtCore import QTimer

    from realtime.util.atomic_files import atomic_path

    def check() -> None:
        shown = window.preview.shown
        late = time.monotonic() - started > quit_after + 60
        if shown is not None and (shown.info.faces > 0 or late):
            app.processEvents()
            with atomic_path(path) as tmp:
                if not window.grab().save(str(tmp), "PNG"):
                    raise OSError(f"could not write {path}")
            _say(f"wrote {path} ({window.width()}x{window.height()}; {'face swapped' if shown.info.faces else 'no face found'})")
            window.close()
            return
        QTimer.singleShot(50, check)

    QTimer.singleShot(max(0, int(quit_after * 1000)), check)


@dataclass
class AppRun:
    """An open app: the Qt application, the window, its session, the API server (or None), the settings file."""

    app: object
    window: object
    session: object
    api: object
    settings_file: Path
    save: bool = True  # a screenshot run leaves the person's saved settings alone
    finished: bool = False

    def finish(self) -> int:
        """After the window closed: stop the API and the loop, save the settings, print the run's figures."""
        from swapcam import config

        if self.finished:
            return 0
        self.finished = True
        if self.api is not None:
            self.api.stop()
        self.session.close()
        if self.save:
            try:
                config.save_app_settings(self.window.final_settings, self.settings_file)
            except OSError as exc:
                _warn(f"could not save the settings to {self.settings_file}: {exc}")
        print(self.session.pipeline.stats().summary(), flush=True)
        return 0


def open_app(args: argparse.Namespace) -> AppRun | int:
    """Build the session and show the window (the loop running); an exit code instead on bad input."""
    import os

    from realtime import live_settings
    from realtime.frames.sources import SourceError
    from realtime.session import LiveSession
    from realtime.swap.model_contract import ModelContractError
    from swapcam import config
    from swapcam.cli import build_parser
    from swapcam.control_api import ApiAddressError, parse_address, start_api
    from swapcam.live_cli import _announce_provenance, _fail, load_occlusion, session_options

    parser, _ = build_parser("app")
    defaults = {a.dest: a.default for a in parser._actions}
    settings_file = args.settings_file or config.settings_path()
    saved, problems = config.load_app_settings(settings_file) if not args.fresh else (config.AppSettings(), [])
    for problem in problems:
        _warn(problem)
    try:
        settings = _settings(args, saved, defaults)
        if args.api:
            parse_address(args.api)
        options = session_options(args)
        targets = _targets(args, saved, options, float(settings["forehead"]))
        occlusion = load_occlusion(args, bool(settings["occlusion"]))
    except (FileNotFoundError, ModelContractError, ValueError) as exc:
        return _fail(str(exc))
    _announce_provenance([t.swapper for t in targets])
    try:
        source, spec = _source(args, saved, defaults)
    except SourceError as exc:
        return _fail(str(exc))
    _say(f"source: {source.describe()}")
    from realtime.frames.sinks import display_available

    if not display_available() and not os.environ.get("QT_QPA_PLATFORM"):
        if not args.screenshot:
            source.close()
            return _fail("the app window needs a display ($DISPLAY or $WAYLAND_DISPLAY); without one use "
                         "`swapcam live` (or --screenshot PNG, which draws the window off-screen)")
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtCore import qInstallMessageHandler
    from PySide6.QtWidgets import QApplication

    from swapcam.gui.main_window import MainWindow

    qInstallMessageHandler(_qt_message)
    app = QApplication.instance() or QApplication(["swapcam"])
    app.setApplicationName("swapcam")
    sinks = args.sink or []
    session = LiveSession(source, targets, options=options, settings=settings,
                          record=args.output if "file" in sinks else None,
                          log=lambda e: _warn(e.message) if e.level != "info" else None, occlusion=occlusion)
    window = MainWindow(session, saved, _gallery(args, session, saved), spec)
    for problem in problems:
        window._error(problem)
    if "vcam" in sinks:
        window.vcam_toggle.setChecked(True)
    api = None
    if args.api:
        def gallery() -> list[dict]:
            return [entry.as_dict() for entry in list(window.gallery.entries.values())]

        try:
            api = start_api(session, args.api, args.api_token, gallery, _say)
        except ApiAddressError as exc:
            window.close()
            session.close()
            source.close()
            return _fail(str(exc))
    window.show()
    session.start()
    keys = ", ".join(f"{k} {n}" for k, n in live_settings.HOTKEYS.items())
    _say(f"window open — close it to stop; keys: {keys}")
    return AppRun(app, window, session, api, settings_file, save=not args.screenshot)


def _qt_message(mode, context, message: str) -> None:
    """Qt's own messages, less the offscreen platform's note that it cannot size windows (screenshots)."""
    if "propagateSizeHints" not in message:
        print(message, file=sys.stderr, flush=True)


def main(args: argparse.Namespace) -> int:
    """Open the window; returns 0 when it is closed, 2 on bad input (a bad option, no usable target)."""
    run = open_app(args)
    if isinstance(run, int):
        return run
    if args.screenshot:
        _screenshot_when_ready(run.app, run.window, args.screenshot, time.monotonic(), args.quit_after or 0.0)
    elif args.quit_after is not None:
        from PySide6.QtCore import QTimer

        QTimer.singleShot(int(args.quit_after * 1000), run.window.close)
    run.app.exec()
    return run.finish()
