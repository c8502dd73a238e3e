"""Swapping: the swapper interface and ``open_swapper``, ONNX Runtime and torch runners, the model contract, the one-photo swap."""
