"""Measurement: `swapcam bench` (latency, fps, per-stage ms of the real live pipeline) and `swapcam eval`
(identity, pose/expression, sharpness, ghosting and stability of a swap), with their reports and plots."""
