"""Face-swap models (contract 1) behind one small class, in the style of insightface's model_zoo.

``FaceSwapper(path)`` validates the file with ``read_model_info`` (clear errors for missing,
not-ONNX and contract-breaking files), makes the ONNX Runtime session with the best providers this
machine has (TensorRT, CUDA, CoreML, DirectML, CPU, in that order), and ``prepare()`` warms it up.
``get(faces)`` swaps a batch of aligned faces in one call. Provider ``torch`` runs the same file with
torch instead (``realtime.swap.torch_runner``); it is also chosen on its own where CUDA torch is present
and onnxruntime has no GPU provider, or has one that fails to start.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from realtime.face.regions import forehead_cut, mouth_hole
from realtime.swap.model_contract import (
    DEFAULT_MORPH_VALUE,
    INPUT_NAME,
    MORPH_INPUT_NAME,
    OUTPUT_NAMES,
    PRIOR_INPUT_NAME,
    ModelContractError,
    ModelInfo,
    read_model_info,
)

PREFERRED_PROVIDERS = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "CoreMLExecutionProvider",
    "DmlExecutionProvider",
    "CPUExecutionProvider",
)
_GPU_PROVIDERS = {"TensorrtExecutionProvider": "cuda", "CUDAExecutionProvider": "cuda", "DmlExecutionProvider": "dml"}


def best_providers(requested: list[str] | None = None) -> list[str]:
    """The providers to ask for: ``requested`` (validated) or every available one of PREFERRED_PROVIDERS, in order."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if requested:
        missing = [p for p in requested if p not in available]
        if missing:
            raise ValueError(f"execution providers {missing} are not available here; available: {available}")
        return list(requested)
    return [p for p in PREFERRED_PROVIDERS if p in available] or ["CPUExecutionProvider"]


def wants_torch(requested: list[str] | None) -> bool:
    """Whether to run on torch: asked for (``torch``), or nothing asked and onnxruntime offers no GPU
    provider while a CUDA build of torch sees a GPU (onnxruntime-gpu stays first where installed)."""
    from realtime.swap.torch_runner import TORCH_PROVIDER, cuda_torch_available

    if requested:
        if TORCH_PROVIDER in requested and len(requested) > 1:
            raise ValueError(f"provider {TORCH_PROVIDER!r} runs alone; it cannot be combined with {requested}")
        return requested == [TORCH_PROVIDER]
    import onnxruntime as ort

    return not any(p in _GPU_PROVIDERS for p in ort.get_available_providers()) and cuda_torch_available()


def tensorrt_cache_dir(model_path: str | Path) -> Path:
    """Where TensorRT keeps its engines for a model: a folder beside it (``NAME.onnx.trt``)."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + ".trt")


def provider_settings(providers: list[str], model_path: str | Path) -> list[str | tuple[str, dict]]:
    """ORT's provider list with options. TensorRT caches its engines and timings beside the model and
    runs in fp16 where the GPU has it, so only the first run on a machine pays the engine build (tens of
    seconds); ``swapcam export --trt-cache`` pays it ahead of time into the same folder."""
    settings: list[str | tuple[str, dict]] = []
    for provider in providers:
        if provider == "TensorrtExecutionProvider":
            cache = str(tensorrt_cache_dir(model_path))
            settings.append((provider, {"trt_engine_cache_enable": True, "trt_engine_cache_path": cache,
                                        "trt_timing_cache_enable": True, "trt_timing_cache_path": cache,
                                        "trt_fp16_enable": True}))
        else:
            settings.append(provider)
    return settings


def create_session(path: str | Path, providers: list[str] | None = None, threads: int = 0):
    """An ONNX Runtime InferenceSession with the best providers (sessions are made only here)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3
    # No busy-waiting worker threads: on a few cores they would steal time from the landmark and
    # capture threads (measured on 2 cores: 2 spinning threads 40 ms/face, not spinning 20 ms).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    chosen = best_providers(providers)
    if "TensorrtExecutionProvider" in chosen:
        # the engine cache folder must exist; where it cannot be made, TensorRT still runs, uncached
        with contextlib.suppress(OSError):
            tensorrt_cache_dir(path).mkdir(parents=True, exist_ok=True)
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=provider_settings(chosen, path))
    except Exception as exc:  # ORT's own errors (invalid graph, unsupported op) name the cause
        raise ModelContractError(f"{path}: ONNX Runtime cannot load it ({type(exc).__name__}: {exc})") from exc


@dataclass
class SwapResult:
    """Outputs for a batch of N faces at resolution R.

    face_mask: (N, R, R) float32 mask in [0, 1] of the input face; face: (N, R, R, 3) swapped face, BGR,
    float32 in [0, 1] (models) or uint8 (the one-photo swap, which samples uint8 pixels: the merge then
    skips two conversions); celeb_mask: (N, R, R) float32 mask in [0, 1] of the swapped face.
    """

    face_mask: np.ndarray
    face: np.ndarray
    celeb_mask: np.ndarray


def aligned_batch(faces: np.ndarray, resolution: int, what: str = "faces") -> np.ndarray:
    """``faces`` as a (N, R, R, 3) uint8 batch (one (R, R, 3) face becomes a batch of one); ValueError naming
    ``what`` when it is not aligned BGR uint8 crops of side ``resolution``."""
    faces = np.asarray(faces)
    if faces.ndim == 3:
        faces = faces[None]
    r = resolution
    if faces.shape[1:] != (r, r, 3) or faces.dtype != np.uint8:
        raise ValueError(f"{what} must be uint8 (N, {r}, {r}, 3) BGR, got {faces.dtype} {faces.shape}")
    return faces


def _declared_inputs(path: Path) -> dict[str, tuple[str, list]]:
    """Input name -> (ORT-style type string, dims) as the ONNX file declares them (no session needed)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {t.name for t in graph.initializer}
    names = {onnx.TensorProto.FLOAT16: "tensor(float16)"}
    return {i.name: (names.get(i.type.tensor_type.elem_type, "tensor(float)"),
                     [d.dim_value if d.HasField("dim_value") else d.dim_param for d in i.type.tensor_type.shape.dim])
            for i in graph.input if i.name not in initializers}


class FaceSwapper:
    """One DFM-contract model: aligned BGR uint8 faces in, swapped faces and masks out.

    ``face_type`` and ``crop_scale`` override the model's (bare .dfm files: whole_face and 1, DeepFaceLab's
    crop); ``morph_value`` feeds ``morph_value:0`` on models that have it (DeepFaceLab AMP).
    """

    def __init__(self, path: str | Path, *, face_type: str | None = None, crop_scale: float | None = None,
                 providers: list[str] | None = None, morph_value: float = DEFAULT_MORPH_VALUE, threads: int = 0) -> None:
        self.info: ModelInfo = read_model_info(path, face_type=face_type, crop_scale=crop_scale)
        self.session, self.torch_runner, self.fallback_note = None, None, ""
        if not wants_torch(providers):
            self.session = create_session(self.info.path, providers, threads)
            asked = best_providers(providers)
            if not providers and any(p in _GPU_PROVIDERS for p in asked) and \
                    not any(p in _GPU_PROVIDERS for p in self.session.get_providers()):
                from realtime.swap.torch_runner import cuda_torch_available

                if cuda_torch_available():  # onnxruntime-gpu installed but its CUDA/cuDNN did not load
                    self.session = None
                    self.fallback_note = f" (onnxruntime could not start {', '.join(p for p in asked if p in _GPU_PROVIDERS)} here)"
        if self.session is None:
            from realtime.swap.torch_runner import TORCH_PROVIDER, TorchRunner

            self.torch_runner = TorchRunner(self.info.path, threads=threads, morph_value=morph_value)
            self.providers = [TORCH_PROVIDER]
            self.device = self.torch_runner.device.type
        else:
            self.providers: list[str] = self.session.get_providers()
            self.device = next((_GPU_PROVIDERS[p] for p in self.providers if p in _GPU_PROVIDERS), "cpu")
        inputs = _declared_inputs(self.info.path) if self.session is None else {
            i.name: (i.type, i.shape) for i in self.session.get_inputs()}
        self.input_dtype = np.float16 if inputs[INPUT_NAME][0] == "tensor(float16)" else np.float32
        self._morph = None
        if MORPH_INPUT_NAME in inputs:
            morph_dtype = np.float16 if inputs[MORPH_INPUT_NAME][0] == "tensor(float16)" else np.float32
            self._morph = np.array([morph_value], morph_dtype)
        batch_dim = inputs[INPUT_NAME][1][0]
        self.fixed_batch = batch_dim if isinstance(batch_dim, int) else None
        self._buffer = np.empty((0, self.resolution, self.resolution, 3), self.input_dtype)
        self._prior_buffer = np.empty((0, self.resolution, self.resolution, 3), self.input_dtype)
        self._prior_faces_buffer = np.empty((0, self.resolution, self.resolution, 3), np.uint8)
        # A prior model draws its target's hair where that person has it (a fringe on the forehead): its
        # swap stops this share of the way from the brow peaks up to the hairline; above, the user's own
        # forehead (face_regions.forehead_cut; the one-photo swap stops at 0.6 and masks the fringe itself)
        self.forehead_keep = 0.15
        # ... and inside the inner lips it shows the user's own mouth (teeth, tongue), as the one-photo swap does:
        # a model fine-tuned in minutes draws the target's lips well but not another person's open mouth
        self.user_mouth = True
        from realtime.swap.photo_swapper import MOUTH_SHRINK  # (a module-level import would be circular)

        self._mouth_shrink = MOUTH_SHRINK * self.info.resolution  # the opening is cut as the one-photo swap cuts it
        self._prior = None
        if self.info.has_prior_input:
            from realtime.swap.reference_prior import Reference, ReferencePrior

            self._prior = ReferencePrior(Reference.from_metadata(self.info.metadata), self.resolution)
        self.warmup_ms: float | None = None

    @property
    def resolution(self) -> int:
        return self.info.resolution

    @property
    def face_type(self) -> str:
        return self.info.face_type

    @property
    def path(self) -> Path:
        """The model file."""
        return self.info.path

    @property
    def identity(self) -> str | None:
        """The identity the model shows, from its metadata (None for a bare DFM)."""
        return self.info.metadata.get("swapcam.identity") or None

    @property
    def consent(self) -> str | None:
        """The consent record in its metadata (None for a bare DFM)."""
        return self.info.metadata.get("swapcam.consent") or None

    @property
    def needs_mesh(self) -> bool:
        """True for reference-prior models: ``get`` then needs each face's 478-point aligned mesh."""
        return self._prior is not None

    @property
    def crop_scale(self) -> float:
        """Side of the aligned crop the model expects over DeepFaceLab's crop of its face type."""
        return self.info.crop_scale

    @property
    def name(self) -> str:
        return self.info.path.name

    def describe(self) -> str:
        runs_on = (f"runs on {self.torch_runner.describe()}{self.fallback_note}" if self.torch_runner is not None
                   else f"ONNX Runtime providers in use: {', '.join(self.providers)}")
        scale = f" x{self.crop_scale:g} crop" if self.crop_scale != 1.0 else ""
        return (f"model {self.info.path} (identity {self.info.identity!r}, {self.resolution} px, {self.face_type}{scale}, "
                f"{np.dtype(self.input_dtype).name} input); {runs_on}")

    def prepare(self, warmup_runs: int = 2) -> FaceSwapper:
        """Warm the session up (first runs allocate and, on GPUs, compile) so the first frame is not slow."""
        faces = np.full((1, self.resolution, self.resolution, 3), 128, np.uint8)
        meshes = self._prior.warp.ref_points[None] if self._prior is not None else None
        t = time.perf_counter()
        if self.torch_runner is not None:
            self.torch_runner.prepare(self.resolution)  # CUDA graphs for 1..4 faces, captured now
        for _ in range(max(1, warmup_runs)):
            self.get(faces, meshes)
        self.warmup_ms = (time.perf_counter() - t) * 1000
        return self

    def _input(self, faces: np.ndarray) -> np.ndarray:
        n = len(faces)
        if self._buffer.shape[0] < n:
            self._buffer = np.empty((n, self.resolution, self.resolution, 3), self.input_dtype)
        buf = self._buffer[:n]
        np.multiply(faces, np.float32(1.0 / 255.0), out=buf, casting="unsafe")
        return buf

    def _prior_faces(self, meshes: np.ndarray | None, n: int) -> np.ndarray:
        """(n, R, R, 3) uint8 BGR: the model's reference warped onto each face's aligned mesh."""
        if meshes is None or len(meshes) != n:
            raise ValueError(f"{self.name} is a reference-prior model: give the {n} faces' aligned meshes "
                             "((N, 478, 2), aligned pixels)")
        if self._prior_faces_buffer.shape[0] < n:
            self._prior_faces_buffer = np.empty((n, self.resolution, self.resolution, 3), np.uint8)
        buf = self._prior_faces_buffer[:n]
        for i, mesh in enumerate(meshes):
            buf[i] = self._prior(mesh)
        return buf

    def _prior_input(self, meshes: np.ndarray | None, n: int) -> np.ndarray:
        """(n, R, R, 3) prior input in [0, 1], the model's input dtype (see ``_prior_faces``)."""
        faces = self._prior_faces(meshes, n)
        if self._prior_buffer.shape[0] < n:
            self._prior_buffer = np.empty((n, self.resolution, self.resolution, 3), self.input_dtype)
        buf = self._prior_buffer[:n]
        np.multiply(faces, np.float32(1.0 / 255.0), out=buf, casting="unsafe")
        return buf

    def get(self, faces: np.ndarray, meshes: np.ndarray | None = None) -> SwapResult:
        """Swap a batch of aligned faces: (N, R, R, 3) BGR uint8 -> SwapResult (one session call).

        meshes: (N, 478, 2) aligned-pixel meshes of the faces, needed by reference-prior models
        (``needs_mesh``), ignored by others. Models exported with a fixed batch size are called once per face.
        """
        faces = aligned_batch(faces, self.resolution)
        r = self.resolution
        if self.fixed_batch and len(faces) != self.fixed_batch:
            parts = [self.get(faces[i:i + 1], None if meshes is None else meshes[i:i + 1]) for i in range(len(faces))]
            return SwapResult(*(np.concatenate([getattr(p, k) for p in parts]) for k in ("face_mask", "face", "celeb_mask")))
        if self.torch_runner is not None:
            outputs = self.torch_runner.run(faces, self._prior_faces(meshes, len(faces)) if self._prior is not None else None)
        else:
            feeds = {INPUT_NAME: self._input(faces)}
            if self._morph is not None:
                feeds[MORPH_INPUT_NAME] = self._morph
            if self._prior is not None:
                feeds[PRIOR_INPUT_NAME] = self._prior_input(meshes, len(faces))
            if self.device != "cpu":
                outputs = self._run_bound(feeds)
            else:
                outputs = self.session.run(list(OUTPUT_NAMES), feeds)
        face_mask, face, celeb_mask = (np.asarray(o, np.float32) for o in outputs)
        face_mask, celeb_mask = face_mask.reshape(len(faces), r, r), celeb_mask.reshape(len(faces), r, r)
        if self._prior is not None:  # never the target's fringe on the user's forehead: no swap above the cut
            for i, mesh in enumerate(meshes):
                cut = int(np.clip(np.ceil(forehead_cut(mesh, self.forehead_keep)), 0, r))
                face_mask[i, :cut] = 0.0
                celeb_mask[i, :cut] = 0.0
                if self.user_mouth:
                    face_mask[i] *= 1.0 - mouth_hole(mesh, r, self._mouth_shrink)
        return SwapResult(face_mask, face.reshape(len(faces), r, r, 3), celeb_mask)

    def _run_bound(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """I/O binding on a GPU: inputs copied once to the device, outputs allocated there, copied back once."""
        binding = self.session.io_binding()
        for name, value in feeds.items():
            binding.bind_cpu_input(name, value)
        for name in OUTPUT_NAMES:
            binding.bind_output(name, self.device)
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()
