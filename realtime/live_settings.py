"""The live settings: one table that every front-end reads.

Each ``Setting`` says its name, type, range or choices, default, help, where it applies in the running
session, the ``swapcam live`` option that sets it at start and the preview window's hotkey that toggles it.
From this one table the app builds its controls, the HTTP API validates a PATCH and documents its schema,
the CLI maps its flags onto a session, and the OpenCV window maps its keys. A new live switch is one entry
here plus the hook it names (``applies`` + ``field``), e.g. the occlusion mask, switched by ``--occlusion on|off``
and the key ``o``, read by the processor as ``processor.occlusion_on``::

    Setting("occlusion", bool, True, "Occlusion mask", "Keep hands, glasses, a mug in front of the face.",
            "processor", field="occlusion_on", arg="occlusion", key="o", group="swap")

``applies`` (where ``LiveSession`` puts a new value, on the next frame):
  merge      a field of the merge's ``MergeSettings``
  processor  an attribute of the ``FaceSwapProcessor``
  smoothing  an attribute of the processor's ``LandmarkSmoother``
  marker     an attribute of the output marker (the visible label)
  photo      an option of the one-photo swapper: the current photo target is rebuilt with it, off the live
             thread (the old one stays on screen until the new one is ready); other targets ignore it
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from realtime.merging.color_transfer import MODES as COLOR_MODES
from realtime.merging.merge import MASK_MODES

APPLIES = ("merge", "processor", "smoothing", "marker", "photo")
KINDS = (bool, int, float, str)


class SettingError(ValueError):
    """A setting that does not exist or a value it cannot take (the message is one line)."""


@dataclass(frozen=True)
class Setting:
    """One live setting (see the module docstring).

    low / high: inclusive range for numbers (``high_open``: ``high`` itself excluded); choices: the values a
    str may take; step: the app's slider / spin-box step; arg: the ``swapcam live`` argparse destination that
    sets it at start (``negate``: the flag turns it off, as ``--no-label``; None values mean "not given");
    key: the preview window's hotkey (bools: toggles); group: the app's panel ("swap", "merge", "output");
    explain: the app shows ``help`` beside the control, not only as a tooltip; off_warning: what the app
    says while a bool is off.
    """

    name: str
    kind: type
    default: object
    label: str
    help: str
    applies: str
    field: str = ""
    low: float | None = None
    high: float | None = None
    high_open: bool = False
    choices: tuple[str, ...] = ()
    step: float | None = None
    arg: str | None = None
    negate: bool = False
    key: str | None = None
    group: str = "merge"
    explain: bool = False
    off_warning: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS or self.applies not in APPLIES:
            raise ValueError(f"setting {self.name}: kind {self.kind} / applies {self.applies!r} unknown")
        if not self.field:
            object.__setattr__(self, "field", self.name)

    def check(self, value: object) -> object:
        """``value`` converted to this setting's type, or SettingError with a one-line reason."""
        name = self.name
        if self.kind is bool:
            if not isinstance(value, bool):
                raise SettingError(f"{name}: expected true or false, got {value!r}")
            return value
        if self.kind in (int, float):
            given = value
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SettingError(f"{name}: expected a number, got {value!r}")
            if self.kind is int:
                if float(value) != int(value):
                    raise SettingError(f"{name}: expected a whole number, got {value!r}")
                value = int(value)
            else:
                value = float(value)
                if not math.isfinite(value):
                    raise SettingError(f"{name}: expected a finite number, got {value!r}")
            too_high = self.high is not None and (value >= self.high if self.high_open else value > self.high)
            if (self.low is not None and value < self.low) or too_high:
                raise SettingError(f"{name}: {given!r} is outside {self.range_text()}")
            return value
        if not isinstance(value, str):
            raise SettingError(f"{name}: expected a string, got {value!r}")
        if self.choices and value not in self.choices:
            raise SettingError(f"{name}: {value!r} is not one of {', '.join(self.choices)}")
        return value

    def range_text(self) -> str:
        return f"[{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"

    def json_schema(self) -> dict:
        """This setting as a JSON-schema property (the API's OpenAPI document)."""
        schema: dict = {"type": {bool: "boolean", int: "integer", float: "number", str: "string"}[self.kind],
                        "description": self.help, "default": self.default}
        if self.low is not None:
            schema["minimum"] = self.low
        if self.high is not None:
            schema["exclusiveMaximum" if self.high_open else "maximum"] = self.high
        if self.choices:
            schema["enum"] = list(self.choices)
        return schema


LABEL_HELP = ("Shows 'AI-altered video (swapcam)' in the corner of every output frame, so that the people who see "
              "the video know it is synthetic without any tool. Turning it off removes only this visible notice: "
              "the invisible watermark stays (swapcam verify finds it). Turn it off only where the disclosure is "
              "made otherwise (a film's credits); keep it on in calls.")

SETTINGS: tuple[Setting, ...] = (
    Setting("bypass", bool, False, "Bypass (show the camera as it is)",
            "Show the input unchanged: no swap, the feed keeps running (the output is still marked).",
            "processor", key="b", group="swap"),
    Setting("occlusion", bool, True, "Occlusion mask",
            "Keep what is in front of the face (hands, glasses, a microphone, a mug, a phone, hair) over the swap: "
            "the occlusion model marks it on each face and the merge leaves those pixels the camera's.",
            "processor", field="occlusion_on", arg="occlusion", key="o", group="swap"),
    Setting("opacity", float, 1.0, "Opacity", "Strength of the swap: 0 = the input face, 1 = the swapped face.",
            "merge", low=0.0, high=1.0, step=0.05, arg="opacity", group="swap"),
    Setting("forehead", float, 0.5, "Forehead (photo swap)",
            "One-photo swap: how far up the forehead the swap reaches, 0 = brows, 1 = hairline. The photo is "
            "rebuilt with it (the current face stays on screen meanwhile); trained models keep their own cut.",
            "photo", low=0.0, high=1.0, step=0.05, arg="forehead", group="swap"),
    Setting("user_eyes", bool, True, "The user's eyes",
            "The user's own eyes between the swapped lids, in the target's eye colour: blinks and gaze follow the "
            "user. Off: the swap's own eyes (a blink squeezes them into a dark slit).",
            "processor", arg="user_eyes", key="e", group="swap"),
    Setting("smoothing", bool, True, "Landmark smoothing",
            "One Euro smoothing of the face landmarks: steadier when still, no lag when moving.",
            "smoothing", field="enabled", arg="no_smoothing", negate=True, group="swap"),
    Setting("color", str, "rct", "Colour transfer",
            "How the swapped face takes the input face's colours: rct / lct / mkl, or none.",
            "merge", choices=COLOR_MODES, arg="color"),
    Setting("mask", str, "both", "Mask", "Which model masks to use ('both' = input face mask x swapped face mask).",
            "merge", choices=MASK_MODES, arg="mask"),
    Setting("hull", bool, False, "Limit to landmark hull", "Also limit the mask to the landmarks' hull.",
            "merge", arg="hull"),
    Setting("mask_threshold", float, 0.5, "Mask threshold",
            "The face is opaque where the mask reaches this, the frame elsewhere; only the feathered border blends "
            "(0 = the soft mask as it is, which can show two faces at once).",
            "merge", field="threshold", low=0.0, high=1.0, high_open=True, step=0.05, arg="mask_threshold"),
    Setting("erode", int, 1, "Erode", "Shrink (>0) or grow (<0) the mask, in aligned-face pixels.",
            "merge", low=-32, high=32, step=1, arg="erode"),
    Setting("blur", int, 4, "Feather", "Feather the mask's edge over this many aligned-face pixels.",
            "merge", low=0, high=64, step=1, arg="blur"),
    Setting("sharpen", float, 0.0, "Sharpen", "Unsharp-mask amount on the swapped face (0 = off).",
            "merge", low=0.0, high=3.0, step=0.1, arg="sharpen"),
    Setting("label", bool, True, "Visible 'AI-altered video' label", LABEL_HELP, "marker", arg="no_label",
            negate=True, group="output", explain=True,
            off_warning="Label off: viewers are no longer told that this video is synthetic."),
)
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
HOTKEYS: dict[str, str] = {s.key: s.name for s in SETTINGS if s.key}


def defaults() -> dict[str, object]:
    """Every setting's default value."""
    return {s.name: s.default for s in SETTINGS}


def validate(changes: dict) -> dict[str, object]:
    """The changes with checked values; SettingError (one line) for an unknown name or a bad value.

    All or nothing: nothing is returned (and so nothing applied) unless every entry is good.
    """
    if not isinstance(changes, dict):
        raise SettingError(f"expected an object of settings, got {type(changes).__name__}")
    unknown = [name for name in changes if name not in BY_NAME]
    if unknown:
        raise SettingError(f"unknown setting {unknown[0]!r}; settings: {', '.join(BY_NAME)}")
    return {name: BY_NAME[name].check(value) for name, value in changes.items()}


def from_args(args) -> dict[str, object]:
    """The settings a ``swapcam live`` command line sets (an argparse namespace); defaults elsewhere.

    Raises SettingError naming the option for a value outside the setting's range."""
    values = defaults()
    for s in SETTINGS:
        if s.arg is None or not hasattr(args, s.arg):
            continue
        given = getattr(args, s.arg)
        if given is None:
            continue
        if s.negate:
            values[s.name] = not given
            continue
        if s.kind is bool and isinstance(given, str):  # an on|off option (e.g. --occlusion on)
            given = {"on": True, "true": True, "yes": True, "off": False, "false": False, "no": False}.get(
                given.strip().lower(), given)
        try:
            values[s.name] = s.check(given)
        except SettingError as exc:
            raise SettingError(f"--{s.arg.replace('_', '-')}: {exc}") from None
    return values


def json_schema() -> dict:
    """A JSON schema of a settings object: any subset of the settings, nothing else."""
    return {"type": "object", "additionalProperties": False,
            "properties": {s.name: s.json_schema() for s in SETTINGS}}
