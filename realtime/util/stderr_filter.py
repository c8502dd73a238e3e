"""Drop known start-up chatter that native libraries write straight to file descriptor 2.

MediaPipe 0.10.14 logs through C++ absl logging, whose threshold no environment variable sets (its
bundled glog reads GLOG_minloglevel, but these messages do not go through glog) and whose symbols the
wheel does not export. So the lines are removed where they are written: while a MediaPipe graph
starts, fd 2 points at a temporary file; afterwards every line that is not one of ``KNOWN_CHATTER``
is written to the real stderr, in order. Nothing else is lost (other threads' output written in the
window comes out when it closes); only those exact messages are dropped.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator

# Lines that say nothing to a user, each with where it comes from.
KNOWN_CHATTER: tuple[re.Pattern[bytes], ...] = (
    # MediaPipe's inference calculator, once per TFLite model without a signature (all of FaceMesh's)
    re.compile(rb"^W0000 .*inference_feedback_manager\.cc:\d+\] Feedback manager requires a model with a "
               rb"single signature inference\. Disabling support for feedback tensors\.\s*$"),
    # absl, before the first absl log line of a process that never calls absl::InitializeLog
    re.compile(rb"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR\s*$"),
    # TensorFlow Lite, when the CPU delegate it always uses is created
    re.compile(rb"^INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.\s*$"),
)

_fd2_lock = threading.Lock()  # fd 2 is one per process: one window at a time


def without_chatter(data: bytes, patterns: tuple[re.Pattern[bytes], ...] = KNOWN_CHATTER) -> bytes:
    """``data`` less the lines that match one of ``patterns`` (line endings kept)."""
    kept = [line for line in data.splitlines(keepends=True) if not any(p.match(line) for p in patterns)]
    return b"".join(kept)


@contextlib.contextmanager
def drop_native_chatter(patterns: tuple[re.Pattern[bytes], ...] = KNOWN_CHATTER) -> Iterator[None]:
    """Within the block, native and Python writes to stderr are held back; on exit they are written
    to stderr less the lines matching ``patterns``."""
    with _fd2_lock:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):  # no usable fd 2 (embedded interpreters): nothing to filter
            yield
            return
        with tempfile.TemporaryFile() as held:
            os.dup2(held.fileno(), 2)
            try:
                yield
            finally:
                with contextlib.suppress(OSError, ValueError, AttributeError):
                    sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                held.seek(0)
                rest = without_chatter(held.read(), patterns)
                if rest:
                    os.write(2, rest)
