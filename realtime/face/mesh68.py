"""The one place where MediaPipe's 478-point face mesh is mapped to the 68-point (iBUG) scheme.

Index ``i`` of ``MESH_TO_68`` is the mesh vertex standing in for 68-point landmark ``i``. Subject's
right side first (image left for a frontal face), as in the iBUG annotation.
"""

import numpy as np

MESH_TO_68 = np.array(
    [
        # jaw 0..16
        127, 234, 93, 132, 58, 172, 136, 150, 152, 379, 365, 397, 288, 361, 323, 454, 356,
        # right brow 17..21, left brow 22..26
        70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
        # nose bridge 27..30, nostrils 31..35
        168, 197, 5, 4, 75, 97, 2, 326, 305,
        # right eye 36..41, left eye 42..47
        33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
        # outer lips 48..59
        61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,
        # inner lips 60..67
        78, 82, 13, 312, 308, 317, 14, 87,
    ],
    dtype=np.int64,
)

# Iris centres (refined mesh only): subject's right, left.
IRIS_CENTRES = np.array([468, 473], dtype=np.int64)
