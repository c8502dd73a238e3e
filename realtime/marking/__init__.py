"""Output marking: the visible label, the invisible watermark and C2PA content credentials."""
