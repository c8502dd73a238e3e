"""`swapcam app`: the desktop window (PySide6) over one live session. Qt lives here only, never in realtime/."""
