"""Small helpers shared across the runtime, training and measurement: atomic file writes, native stderr filtering."""
