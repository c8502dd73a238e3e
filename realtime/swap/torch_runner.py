"""The swap model run by torch: GPU inference without onnxruntime-gpu's CUDA/cuDNN version matching.

``TorchRunner(path)`` reads the exported ``.onnx`` file (``realtime.swap.onnx_torch``; never a checkpoint)
and runs it with torch: on CUDA in float16 with channels-last weights, the uint8 faces copied once
to the GPU through a pinned buffer and scaled there, one CUDA graph per batch size 1..``max_batch``
captured at ``prepare()`` (after eager warm-up runs), outputs copied back once; on the CPU in
float32 (so CI runs the same path). ``FaceSwapper`` uses it for ``--provider torch``, and on its own
where CUDA torch is present but onnxruntime has no GPU provider.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

from realtime.swap.model_contract import INPUT_NAME, MORPH_INPUT_NAME, OUTPUT_NAMES, PRIOR_INPUT_NAME, ModelContractError

TORCH_PROVIDER = "torch"


def _nvidia_driver_present() -> bool:
    """A cheap look for an NVIDIA driver (device node, proc entry, or the driver library on Windows)."""
    if Path("/dev/nvidiactl").exists() or Path("/proc/driver/nvidia/version").exists():
        return True
    if sys.platform == "win32":
        import ctypes.util

        return ctypes.util.find_library("nvcuda") is not None
    return False


def cuda_torch_available() -> bool:
    """True where a CUDA build of torch sees a GPU. torch is imported only where it already is or an
    NVIDIA driver is present, so a CPU machine's live start does not pay torch's import time."""
    torch = sys.modules.get("torch")
    if torch is None:
        if importlib.util.find_spec("torch") is None or not _nvidia_driver_present():
            return False
        import torch
    return bool(torch.cuda.is_available())


class TorchRunner:
    """One DFM-contract model on torch: ``run(faces uint8 (N, R, R, 3) BGR)`` -> the three outputs
    ``(face_mask (N, R, R, 1), face (N, R, R, 3), celeb_mask (N, R, R, 1))`` as float32 numpy arrays.

    device: 'cuda' or 'cpu' (default: CUDA where available). dtype: torch.float16 on CUDA,
    torch.float32 on CPU by default. cuda_graphs: default on for CUDA. threads: torch CPU threads for
    each run (0: torch's default), set around the run and restored after (torch's count is per process).
    """

    def __init__(self, path: str | Path, *, device: str | None = None, dtype=None, max_batch: int = 4,
                 cuda_graphs: bool | None = None, threads: int = 0, morph_value: float = 0.75) -> None:
        import torch

        from realtime.swap.onnx_torch import OnnxModule

        self.path = Path(path)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ModelContractError("the torch runner was asked for CUDA, but this torch has no CUDA GPU")
        self.dtype = dtype or (torch.float16 if self.device.type == "cuda" else torch.float32)
        self.max_batch = max(1, int(max_batch))
        self.use_graphs = self.device.type == "cuda" if cuda_graphs is None else (cuda_graphs and self.device.type == "cuda")
        self.graph_error: str | None = None
        self.threads = int(threads)
        module = OnnxModule.load(self.path)
        names = module.input_names
        if names[:1] != [INPUT_NAME] and INPUT_NAME not in names:
            raise ModelContractError(f"{path}: no input {INPUT_NAME!r} for the torch runner")
        if list(module.output_names) != list(OUTPUT_NAMES):
            raise ModelContractError(f"{path}: outputs are {module.output_names}, expected {list(OUTPUT_NAMES)}")
        self.module = module.to(self.device, self.dtype)
        if self.device.type == "cuda":  # tensor-core convolutions read NHWC: the graph's NHWC input is already so
            for name, buf in list(self.module.named_buffers()):
                if buf.dim() == 4:
                    setattr(self.module, name, buf.contiguous(memory_format=torch.channels_last))
        for name in names:
            if name not in (INPUT_NAME, MORPH_INPUT_NAME, PRIOR_INPUT_NAME):
                raise ModelContractError(f"{path}: unexpected input {name!r} for the torch runner")
        self._input_names = list(names)
        self.has_prior = PRIOR_INPUT_NAME in names
        self._morph = torch.tensor([morph_value], dtype=self.dtype, device=self.device)
        self.resolution: int | None = None
        self._graphs: dict[int, tuple] = {}

    # ---- buffers, made once the resolution is known -----------------------------------------------
    def _allocate(self, resolution: int) -> None:
        import torch

        self.resolution = resolution
        r, b, cuda = resolution, self.max_batch, self.device.type == "cuda"
        planes = 2 if self.has_prior else 1  # the face, and the reference-prior model's warped reference
        self._dev_in = torch.empty((planes, b, r, r, 3), dtype=torch.uint8, device=self.device)
        if cuda:
            self._host_in = torch.empty((planes, b, r, r, 3), dtype=torch.uint8, pin_memory=True)
            self._host_out = [torch.empty((b, r, r, c), dtype=torch.float32, pin_memory=True) for c in (1, 3, 1)]
            self._stream = torch.cuda.Stream(self.device)

    def _forward(self, n: int):
        """The model on the first ``n`` faces (and priors) of the device input buffer; float32 outputs."""
        x = self._dev_in[:, :n].float().mul_(1.0 / 255.0).to(self.dtype)
        feeds = {INPUT_NAME: x[0], MORPH_INPUT_NAME: self._morph, PRIOR_INPUT_NAME: x[-1]}
        return tuple(o.float() for o in self.module(*(feeds[name] for name in self._input_names)))

    def _capture(self, n: int) -> None:
        """Warm up on a side stream, then capture one CUDA graph for batch size ``n``."""
        import torch

        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side), torch.no_grad():
            for _ in range(3):
                self._forward(n)
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.no_grad(), torch.cuda.graph(graph):
            outputs = self._forward(n)
        self._graphs[n] = (graph, outputs)

    def prepare(self, resolution: int) -> TorchRunner:
        """Allocate the buffers and, on CUDA, capture the graphs for every batch size up to max_batch;
        where capture fails the runner stays eager and ``graph_error`` says why."""
        import torch

        if self.resolution != resolution:
            self._allocate(resolution)
        if self.use_graphs and not self._graphs:
            self._dev_in.fill_(128)
            try:
                for n in range(1, self.max_batch + 1):
                    self._capture(n)
            except RuntimeError as exc:  # an operator that cannot be captured: run eagerly instead
                self._graphs.clear()
                self.use_graphs = False
                self.graph_error = f"{type(exc).__name__}: {exc}".splitlines()[0]
                torch.cuda.synchronize(self.device)
        return self

    def describe(self) -> str:
        dtype = str(self.dtype).replace("torch.", "")
        graphs = ("CUDA graphs for 1.." + str(self.max_batch) + " faces" if self.use_graphs else
                  f"eager (CUDA graphs off: {self.graph_error})" if self.graph_error else "eager")
        name = f"{self.device.type}" + (f" {__import__('torch').cuda.get_device_name(self.device)}"
                                        if self.device.type == "cuda" else "")
        return f"torch {__import__('torch').__version__} on {name}, {dtype}, {graphs}"

    # ---- running -----------------------------------------------------------------------------------
    def run(self, faces: np.ndarray, priors: np.ndarray | None = None) -> list[np.ndarray]:
        """faces uint8 (N, R, R, 3) BGR -> [face_mask (N,R,R,1), face (N,R,R,3), celeb_mask (N,R,R,1)] float32.

        priors: uint8 (N, R, R, 3), the warped reference of a reference-prior model (required for one)."""
        import torch

        n, r = len(faces), faces.shape[1]
        if self.has_prior and (priors is None or priors.shape != faces.shape):
            raise ValueError(f"{self.path} is a reference-prior model: give uint8 priors shaped like the faces {faces.shape}")
        if self.resolution != r:
            self.prepare(r)
        if n > self.max_batch:
            parts = [self.run(faces[i:i + self.max_batch], None if priors is None else priors[i:i + self.max_batch])
                     for i in range(0, n, self.max_batch)]
            return [np.concatenate([p[k] for p in parts]) for k in range(3)]
        if self.device.type == "cpu":
            previous = torch.get_num_threads()
            try:
                if self.threads:
                    torch.set_num_threads(self.threads)
                with torch.no_grad():
                    self._dev_in[0, :n].copy_(torch.from_numpy(np.ascontiguousarray(faces)))
                    if self.has_prior:
                        self._dev_in[1, :n].copy_(torch.from_numpy(np.ascontiguousarray(priors)))
                    return [o.numpy() for o in self._forward(n)]
            finally:
                torch.set_num_threads(previous)
        np.copyto(self._host_in[0, :n].numpy(), faces)
        if self.has_prior:
            np.copyto(self._host_in[1, :n].numpy(), priors)
        with torch.cuda.stream(self._stream), torch.no_grad():
            self._dev_in[:, :n].copy_(self._host_in[:, :n], non_blocking=True)
            if n in self._graphs:
                graph, outputs = self._graphs[n]
                graph.replay()
            else:
                outputs = self._forward(n)
            for host, out in zip(self._host_out, outputs):
                host[:n].copy_(out, non_blocking=True)
        self._stream.synchronize()
        return [host[:n].numpy().copy() for host in self._host_out]
