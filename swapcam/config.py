"""The user's swapcam folders and the files the front-ends keep there.

- ``config_dir()``: ``$SWAPCAM_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/swapcam``, else ``~/.config/swapcam`` (the
  folder that already holds the C2PA signing certificate);
- ``targets_dir()``: the user's own target folder the app's gallery lists (``$XDG_DATA_HOME/swapcam/targets``,
  else ``~/.local/share/swapcam/targets``);
- ``AppSettings``: what the app remembers between runs, in ``config_dir()/app.json`` (readable JSON, written
  atomically). A file that cannot be read, is not ours, or is from another format version is reported and
  set aside as ``app.json.bad`` (replaced on the next save), never a crash; a single bad value is reported and
  dropped, the rest kept;
- ``api_token()``: the control API's token, made once (random, 0600) and kept in ``config_dir()/api_token``.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from realtime import live_settings
from realtime.util.atomic_files import write_text

SETTINGS_VERSION = 1


def config_dir() -> Path:
    """The user's swapcam folder: the one the C2PA signing certificate lives in (see the module docstring)."""
    from realtime.marking.content_credentials import credentials_dir

    return credentials_dir()


def targets_dir() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "swapcam" / "targets"


@dataclass
class AppSettings:
    """What the app window restores at start. settings: the live settings (``realtime.live_settings``);
    source: 'demo', a camera index or path, or a video file; width/height/fps: the camera mode asked for;
    target: the target shown; extra_targets: paths dropped onto the window; layout: 'swapped' or 'side_by_side';
    record_path: where recordings go; output_window: the OBS capture window open; geometry: the window's
    x, y, width, height."""

    settings: dict = field(default_factory=live_settings.defaults)
    source: str = "auto"
    width: int = 640
    height: int = 480
    fps: float = 30.0
    target: str | None = None
    extra_targets: list[str] = field(default_factory=list)
    layout: str = "side_by_side"
    record_path: str = "swapcam_recording.mp4"
    output_window: bool = False
    virtual_camera: bool = False
    geometry: list[int] | None = None

    def to_json(self) -> str:
        return json.dumps({"format": "swapcam app settings", "version": SETTINGS_VERSION, **asdict(self)}, indent=2)


_CHECKS = {
    "source": lambda v: isinstance(v, str) and v,
    "width": lambda v: isinstance(v, int) and 16 <= v <= 8192,
    "height": lambda v: isinstance(v, int) and 16 <= v <= 8192,
    "fps": lambda v: isinstance(v, (int, float)) and 1 <= v <= 240,
    "target": lambda v: v is None or isinstance(v, str),
    "extra_targets": lambda v: isinstance(v, list) and all(isinstance(p, str) for p in v),
    "layout": lambda v: v in ("swapped", "side_by_side"),
    "record_path": lambda v: isinstance(v, str) and v,
    "output_window": lambda v: isinstance(v, bool),
    "virtual_camera": lambda v: isinstance(v, bool),
    "geometry": lambda v: v is None or (isinstance(v, list) and len(v) == 4 and all(isinstance(x, int) for x in v)),
}


def settings_path() -> Path:
    return config_dir() / "app.json"


def load_app_settings(path: Path | None = None) -> tuple[AppSettings, list[str]]:
    """The saved settings and what was wrong with the file (one line each; empty when all was well).

    Never raises for a bad file: an unreadable / foreign / other-version file is renamed to ``NAME.bad`` and
    the defaults are used; a bad entry is dropped and reported."""
    path = path or settings_path()
    if not path.exists():
        return AppSettings(), []
    problems: list[str] = []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("format") != "swapcam app settings":
            raise ValueError("not a swapcam app settings file")
        if data.get("version") != SETTINGS_VERSION:
            raise ValueError(f"format version {data.get('version')!r}, this swapcam writes {SETTINGS_VERSION}")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        bad = path.with_name(path.name + ".bad")
        try:
            os.replace(path, bad)
            kept = f"; the old file is kept as {bad}"
        except OSError:
            kept = ""
        return AppSettings(), [f"settings file {path} could not be used ({' '.join(str(exc).split())}): starting "
                               f"from the defaults, a new file is written on exit{kept}"]
    result = AppSettings()
    names = {f.name for f in fields(AppSettings)}
    for key, value in data.items():
        if key in ("format", "version"):
            continue
        if key not in names:
            problems.append(f"settings file {path}: unknown entry {key!r} ignored")
        elif key == "settings":
            if not isinstance(value, dict):
                problems.append(f"settings file {path}: 'settings' is not an object; defaults used")
                continue
            for name, v in value.items():
                try:
                    result.settings.update(live_settings.validate({name: v}))
                except live_settings.SettingError as exc:
                    problems.append(f"settings file {path}: {exc}; default used")
        elif not _CHECKS[key](value):
            problems.append(f"settings file {path}: {key} = {value!r} is not usable; default used")
        else:
            setattr(result, key, value)
    return result, problems


def save_app_settings(settings: AppSettings, path: Path | None = None) -> Path:
    """Write the settings atomically (a crash leaves the old file or the new one)."""
    path = path or settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text(path, settings.to_json() + "\n")


def api_token(path: Path | None = None) -> str:
    """The stored API token, made (random, readable by this user only) the first time."""
    path = path or config_dir() / "api_token"
    try:
        token = path.read_text(encoding="utf-8").strip()
        if len(token) >= 16:
            return token
    except OSError:
        pass
    token = secrets.token_urlsafe(24)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # never readable by others, not even briefly
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token + "\n")
    os.replace(tmp, path)
    return token
