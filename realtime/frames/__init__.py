"""The frame path: where frames come from (camera, video, folder, demo), camera-like pacing, where they go (sinks)."""
