"""The face: landmarks (MediaPipe FaceMesh), the 68-point mapping, alignment, temporal smoothing and face regions."""
