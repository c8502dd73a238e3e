"""The target gallery: the models and photos found (``realtime.swap.targets``), each with its picture, identity
and consent record; picking one asks the session to switch (the feed keeps running meanwhile)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QIcon, QImage, QPixmap
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from realtime.swap.targets import THUMB_SIDE, TargetEntry, thumbnail

PATH_ROLE = Qt.ItemDataRole.UserRole


def _icon(entry: TargetEntry) -> QIcon:
    picture = thumbnail(entry)
    if picture is None:
        pixmap = QPixmap(THUMB_SIDE, THUMB_SIDE)
        pixmap.fill(QColor(60, 60, 70) if entry.error is None else QColor(120, 40, 40))
        return QIcon(pixmap)
    h, w = picture.shape[:2]
    image = QImage(picture.data, w, h, picture.strides[0], QImage.Format.Format_BGR888).copy()
    return QIcon(QPixmap.fromImage(image))


def entry_text(entry: TargetEntry | None, path: Path | None = None) -> str:
    """What a person reads about a target: identity and consent, or what is missing."""
    if entry is None:
        return f"{path.name if path else ''}: not in the gallery"
    if entry.error:
        return f"{entry.name}: cannot be used — {entry.error}"
    who = entry.identity or "identity not recorded"
    consent = entry.consent or ("no consent record: show a person's face only with their consent")
    return f"<b>{entry.name}</b> ({entry.kind})<br>Identity: {who}<br>Consent: {consent}"


class TargetGallery(QWidget):
    """A list of targets as pictures; ``on_pick(path)`` when the person picks one."""

    def __init__(self, on_pick: Callable[[Path], None], parent=None) -> None:
        super().__init__(parent)
        self._on_pick = on_pick
        self.entries: dict[str, TargetEntry] = {}
        self.list = QListWidget()
        self.list.setObjectName("gallery")
        self.list.setViewMode(QListWidget.ViewMode.IconMode)
        self.list.setIconSize(QSize(72, 72))
        self.list.setGridSize(QSize(100, 104))
        self.list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.list.setMovement(QListWidget.Movement.Static)
        self.list.setWordWrap(True)
        self.list.setFixedHeight(124)  # one row of pictures; more scroll
        self.list.itemClicked.connect(self._clicked)
        self.list.itemActivated.connect(self._clicked)
        self.info = QLabel()
        self.info.setObjectName("target_info")
        self.info.setWordWrap(True)
        self.info.setTextFormat(Qt.TextFormat.RichText)
        self.hint = QLabel("Drop a photo, a folder of photos, a video or a .onnx / .dfm model onto the window to add it.")
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: #555; font-size: 11px;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.list)
        layout.addWidget(self.info)
        layout.addWidget(self.hint)

    def set_entries(self, entries: list[TargetEntry]) -> None:
        self.list.clear()
        self.entries.clear()
        for entry in entries:
            self.add(entry)

    def add(self, entry: TargetEntry) -> QListWidgetItem:
        """Add (or refresh) one target; returns its item."""
        key = str(entry.path.resolve())
        existing = self.item_for(entry.path)
        if existing is not None:
            self.list.takeItem(self.list.row(existing))
        item = QListWidgetItem(_icon(entry), entry.name)
        item.setData(PATH_ROLE, str(entry.path))
        item.setToolTip(entry_text(entry).replace("<br>", "\n").replace("<b>", "").replace("</b>", ""))
        if entry.error:
            item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
        self.entries[key] = entry
        self.list.addItem(item)
        return item

    def item_for(self, path: Path) -> QListWidgetItem | None:
        key = str(Path(path).resolve())
        for row in range(self.list.count()):
            item = self.list.item(row)
            if str(Path(item.data(PATH_ROLE)).resolve()) == key:
                return item
        return None

    def _clicked(self, item: QListWidgetItem) -> None:
        self._on_pick(Path(item.data(PATH_ROLE)))

    def show_current(self, path: Path, loading: Path | None = None) -> None:
        """Select the target on screen and say who it is (and what is loading)."""
        item = self.item_for(path)
        if item is not None:
            self.list.blockSignals(True)
            self.list.setCurrentItem(item)
            self.list.blockSignals(False)
        text = entry_text(self.entries.get(str(Path(path).resolve())), Path(path))
        if loading is not None:
            text += f"<br><i>loading {Path(loading).name}… (the current face stays until it is ready)</i>"
        self.info.setText(text)
