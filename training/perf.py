"""Training-speed arithmetic: FLOPs of a training step counted from the model, the device's peak rate,
and model FLOPs utilisation (MFU = model FLOPs per second / peak).

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` while the model (and then the
losses) run forward on a real batch: every convolution and matrix product executed; the backward
counts twice the forward (see ``training_step_flops``). "Model" FLOPs are those of ``FaceSwapModel``;
the losses' (SSIM windows) are reported apart and left out of MFU, as is usual. Counted at a small
batch and scaled linearly (every counted operator is linear in the batch).
"""

from __future__ import annotations

import time

import torch

# Dense (no sparsity) bf16 tensor-core peak, TFLOP/s, from NVIDIA's datasheets; matched in order
# against torch.cuda.get_device_name(). Leads, not measurements: measured_matmul_tflops() measures.
DATASHEET_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H200 NVL", 835.6), ("H200", 989.4), ("H100 NVL", 835.6), ("H100 PCIe", 756.5), ("H100", 989.4),
    ("GH200", 989.4), ("A100", 312.0), ("L40S", 362.1), ("L40", 181.0), ("L4", 121.0), ("A10G", 70.0),
    ("A10", 125.0), ("RTX 4090", 165.2), ("RTX 3090", 71.0),
)


def datasheet_peak_tflops(device: torch.device) -> tuple[float | None, str]:
    """(peak bf16 TFLOP/s or None, the device's name) for a CUDA device; (None, cpu) on a CPU."""
    if device.type != "cuda":
        return None, "cpu"
    name = torch.cuda.get_device_name(device)
    return next((tflops for key, tflops in DATASHEET_BF16_TFLOPS if key in name), None), name


def measured_matmul_tflops(device: torch.device, dtype: torch.dtype | None = None, size: int | None = None,
                           repeats: int = 10) -> float:
    """The rate of one large matrix product on ``device`` (bf16 8192^3 on CUDA, float32 1024^3 on a
    CPU), median of ``repeats`` after warm-up: the ceiling this machine reaches in practice."""
    cuda = device.type == "cuda"
    dtype = dtype or (torch.bfloat16 if cuda else torch.float32)
    size = size or (8192 if cuda else 1024)
    gen = torch.Generator(device=device).manual_seed(0)
    a = torch.randn((size, size), generator=gen, device=device, dtype=torch.float32).to(dtype)
    b = torch.randn((size, size), generator=gen, device=device, dtype=torch.float32).to(dtype)
    times = []
    for i in range(repeats + 3):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            torch.matmul(a, b)
            end.record()
            end.synchronize()
            seconds = start.elapsed_time(end) / 1e3
        else:
            t = time.perf_counter()
            torch.matmul(a, b)
            seconds = time.perf_counter() - t
        if i >= 3:
            times.append(seconds)
    times.sort()
    return 2 * size**3 / times[len(times) // 2] / 1e12


def training_step_flops(model: torch.nn.Module, batch: dict[str, torch.Tensor], weights,
                        batch_size: int | None = None) -> dict[str, float]:
    """FLOPs of one training step of ``model`` on ``batch``, scaled from the batch given to
    ``batch_size``: {"model": ..., "losses": ..., "total": ...}, forward + backward.

    The forward pass is counted; the backward is taken as twice the forward (a gradient for the
    input and one for the weights of every layer, the usual rule), because torch's FlopCounterMode
    counts a grouped (depthwise) convolution's backward as if it were ungrouped (seen in torch 2.13:
    a 64-group 3x3 convolution's backward counted 64x its forward)."""
    from torch.utils.flop_counter import FlopCounterMode

    from training.trainer import compute_losses

    counted = next(iter(batch.values())).shape[0]
    with torch.no_grad():
        with FlopCounterMode(display=False) as model_counter:
            model(batch["src_input"], batch["dst_input"], batch.get("src_prior"))
        with FlopCounterMode(display=False) as step_counter:
            compute_losses(model, batch, weights)
    model_forward = model_counter.get_total_flops()
    loss_forward = step_counter.get_total_flops() - model_forward
    scale = 3 * (batch_size or counted) / counted
    return {"model": model_forward * scale, "losses": loss_forward * scale,
            "total": (model_forward + loss_forward) * scale}


def mfu(model_flops_per_step: float, steps_per_s: float, peak_tflops: float | None) -> float | None:
    """Model FLOPs utilisation in [0, 1] (None without a peak)."""
    if not peak_tflops:
        return None
    return model_flops_per_step * steps_per_s / (peak_tflops * 1e12)
