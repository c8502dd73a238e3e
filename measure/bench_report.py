"""What a benchmark figure needs next to it: the machine it ran on, and a markdown table of results."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def _gpus() -> list[str]:
    """GPU names and memory from nvidia-smi when it exists; [] otherwise."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine_description() -> dict:
    """CPU model, cores (logical and usable by this process), RAM, GPUs, OS, load, library versions."""
    import cv2
    import numpy as np

    try:
        import onnxruntime as ort

        providers = ort.get_available_providers()
    except ImportError:  # pragma: no cover - a declared dependency
        providers = []
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": _cpu_model(),
        "cores_logical": os.cpu_count(),
        "cores_usable": usable,
        "ram_gib": _ram_gib(),
        "gpus": _gpus(),
        "os": platform.platform(),
        "load_average_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "onnxruntime_providers_available": providers,
        "versions": {
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "opencv": cv2.__version__,
            "onnxruntime": _version("onnxruntime") or _version("onnxruntime-gpu"),
            "mediapipe": _version("mediapipe"),
        },
    }


def _num(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _processing(run: dict) -> str:
    """serial / split / adaptive, with the share of frames the adaptive runs overlapped."""
    kind = run.get("pipelining") or "–"
    if kind == "adaptive" and run.get("overlapped_share") is not None:
        return f"adaptive ({100 * run['overlapped_share']:.0f} % overlapped)"
    return kind


def markdown_table(report: dict) -> str:
    """The README "Benchmarks" table: one row per configuration, then the machine and command."""
    head = ("| configuration | provider | processing | fps | model-only fps | pipeline / model-only | latency p50 / p95 / p99 ms "
            "| landmarks | align | occlusion | swap | merge | mark ms (p50) | dropped / captured | CPU % (1 core = 100) |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in report["runs"]:
        lat = r["e2e_latency_ms"] if r["e2e_latency_ms"]["p50"] is not None else r["latency_ms"]
        st = r["stages_ms"]
        mo = r["model_only"]
        lines.append(
            f"| {r['name']} | {r['provider'].replace('ExecutionProvider', '')} | {_processing(r)} | {_num(r['fps'])} "
            f"| {_num(mo['fps'])} "
            f"| {_num(r['pipeline_over_model_only'], 2)} | {_num(lat['p50'])} / {_num(lat['p95'])} / {_num(lat['p99'])} "
            f"| {_num(st['landmarks']['p50'])} | {_num(st['align']['p50'])} | {_num(st.get('occlusion', {}).get('p50'), 2)} "
            f"| {_num(st['swap']['p50'])} "
            f"| {_num(st['merge']['p50'])} | {_num(st.get('mark', {}).get('p50'), 2)} | {r['dropped']['total']} / {r['frames_captured']} "
            f"| {_num(r['cpu']['process_percent'], 0)} |"
        )
    m = report["machine"]
    gpu = "; ".join(m["gpus"]) if m["gpus"] else "no GPU"
    v = m["versions"]
    lines += [
        "",
        f"Machine: {m['cpu']}, {m['cores_usable']} cores usable, {m['ram_gib']} GiB RAM, {gpu}; {m['os']}; "
        f"python {v['python']}, numpy {v['numpy']}, OpenCV {v['opencv']}, onnxruntime {v['onnxruntime']}, "
        f"mediapipe {v['mediapipe']}. Load average at start: {m['load_average_1_5_15']}.",
        f"Source: {report['source']} ({report['frames_loaded']} frames of {report['frame_size']}), "
        f"{report['frames_per_config']} frames per configuration after {report['warmup']} warm-up, "
        f"interleaved in chunks of {report['chunk']}; capture = copy of a pre-decoded frame (+ stamp), no decode.",
        f"Latency: {report['latency_kind']}. In `fast` rows the "
        "source never waits, so it includes frames queued behind the one being processed (a throughput test); "
        "camera-paced rows show what a viewer sees. pipeline / model-only = pipeline fps over the fps of the same "
        "ONNX session alone (batch 1, on a real aligned face).",
        f"Command: `{report['command']}`",
    ]
    return "\n".join(lines) + "\n"
