"""Fixture modules live in tests/fixtures/, one per area (faces, facesets, models)."""

import os

os.environ.setdefault("GLOG_minloglevel", "2")

pytest_plugins = [
    "tests.fixtures.faces",
    "tests.fixtures.videos",
    "tests.fixtures.facesets",
    "tests.fixtures.models",
    "tests.fixtures.sessions",
]
