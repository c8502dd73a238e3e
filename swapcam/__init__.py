"""swapcam: real-time streaming face swap."""

__version__ = "0.1.0"
