"""The live settings' controls, built from the one table (``realtime.live_settings.SETTINGS``).

bool -> check box, str with choices -> combo box, float -> slider with its value, int -> spin box; each with
the setting's help as its tooltip (and shown beside it where the table says ``explain``). A change calls
``on_change({name: value})`` (the session's ``update``); ``show_settings(values)`` puts the session's values
back into the controls without calling it again (a change made by the API or a hotkey shows here).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from realtime.live_settings import SETTINGS, Setting


class _Slider(QWidget):
    """A float setting: a slider in ``step`` units and the value beside it."""

    def __init__(self, setting: Setting, on_value: Callable[[float], None]) -> None:
        super().__init__()
        self.setting = setting
        self._step = setting.step or 0.01
        top = setting.high - (self._step if setting.high_open else 0.0)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(round(setting.low / self._step), round(top / self._step))
        self.value_label = QLabel()
        self.value_label.setMinimumWidth(36)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.slider)
        row.addWidget(self.value_label)
        self.slider.valueChanged.connect(lambda v: self._changed(v, on_value))

    def _changed(self, steps: int, on_value) -> None:
        value = round(steps * self._step, 6)
        self.value_label.setText(f"{value:g}")
        if not self.slider.signalsBlocked():
            on_value(value)

    def set_value(self, value: float) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(round(float(value) / self._step))
        self.slider.blockSignals(False)
        self.value_label.setText(f"{float(value):g}")


class SettingsPanel(QWidget):
    """Group boxes of controls, one per setting of ``groups`` (the table's ``group`` names, in that order)."""

    TITLES = {"swap": "Swap", "merge": "Merge", "output": "Label"}

    def __init__(self, groups: tuple[str, ...], on_change: Callable[[dict], None], parent=None) -> None:
        super().__init__(parent)
        self._on_change = on_change
        self.controls: dict[str, QWidget] = {}
        self.warnings: dict[str, QLabel] = {}
        box_layout = QVBoxLayout(self)
        box_layout.setContentsMargins(0, 0, 0, 0)
        for group in groups:
            box = QGroupBox(self.TITLES.get(group, group.title()))
            form = QFormLayout(box)
            for setting in (s for s in SETTINGS if s.group == group):
                self._add(form, setting)
            box_layout.addWidget(box)

    def _send(self, name: str, value) -> None:
        self._on_change({name: value})

    def _add(self, form: QFormLayout, s: Setting) -> None:
        if s.kind is bool:
            widget = QCheckBox(s.label)
            widget.toggled.connect(lambda on, n=s.name: self._send(n, bool(on)))
            form.addRow(widget)
        else:
            if s.choices:
                widget = QComboBox()
                widget.addItems(list(s.choices))
                widget.currentTextChanged.connect(lambda text, n=s.name: self._send(n, text))
            elif s.kind is float:
                widget = _Slider(s, lambda v, n=s.name: self._send(n, v))
            else:
                widget = QSpinBox()
                widget.setRange(int(s.low), int(s.high))
                widget.setSingleStep(int(s.step or 1))
                widget.valueChanged.connect(lambda v, n=s.name: self._send(n, int(v)))
            form.addRow(s.label, widget)
        widget.setToolTip(s.help)
        widget.setObjectName(f"setting_{s.name}")
        self.controls[s.name] = widget
        if s.explain:
            text = QLabel(s.help)
            text.setWordWrap(True)
            text.setStyleSheet("color: #555; font-size: 11px;")
            form.addRow(text)
        if s.off_warning:
            warning = QLabel(s.off_warning)
            warning.setWordWrap(True)
            warning.setStyleSheet("color: #b00020; font-weight: bold;")
            warning.setVisible(False)
            form.addRow(warning)
            self.warnings[s.name] = warning

    def show_settings(self, values: dict) -> None:
        """Show ``values`` in the controls (without sending them back)."""
        for name, widget in self.controls.items():
            if name not in values:
                continue
            value = values[name]
            if isinstance(widget, _Slider):
                widget.set_value(value)
                continue
            widget.blockSignals(True)
            if isinstance(widget, QCheckBox):
                widget.setChecked(bool(value))
            elif isinstance(widget, QComboBox):
                widget.setCurrentText(str(value))
            elif isinstance(widget, QSpinBox):
                widget.setValue(int(value))
            widget.blockSignals(False)
            if name in self.warnings:
                self.warnings[name].setVisible(not value)
