"""Offline half of swapcam: extraction to facesets, model, losses, trainer, exporter."""
