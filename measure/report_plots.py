"""PNG figures for `swapcam eval` and `swapcam bench` (matplotlib, Agg backend, no pyplot state).

Each function draws one figure from plain data (the JSON the command also writes) and saves it
atomically, so a half-written PNG never replaces a good one.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from realtime.util.atomic_files import atomic_path, write_image


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    return path


def _series(values: list) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], np.float64)


def eval_curves_png(report: dict, path: str | Path) -> Path:
    """Per-frame curves of an eval report: identity similarity, pose and expression error,
    sharpness and ghosting, warping error of input and output, eye openness of input and output (still
    segments shaded)."""
    pf = report["per_frame"]
    frames = np.arange(len(pf["pose_error_deg"]))
    eyes = "eye_openness_input" in pf
    fig = _figure(10, 13 if eyes else 11)
    axes = fig.subplots(6 if eyes else 5, 1, sharex=True)
    sim = _series(pf["similarity_to_target"])
    ok = np.isfinite(sim)
    axes[0].plot(frames[ok], sim[ok], ".-", color="tab:purple", label="output vs target")
    if "input_similarity_to_target" in pf:
        base = _series(pf["input_similarity_to_target"])
        axes[0].plot(frames[ok], base[ok], ".-", color="tab:gray", label="input vs target")
    axes[0].set_ylabel("cosine to target")
    axes[0].set_title(f"identity (target: {report['identity']['target']})")
    axes[1].plot(frames, _series(pf["pose_error_deg"]), color="tab:red")
    axes[1].set_ylabel("pose error (deg)")
    axes[2].plot(frames, _series(pf["expression_error_iod"]), color="tab:orange")
    axes[2].set_ylabel("expression error (IOD)")
    axes[3].plot(frames, _series(pf["sharpness_ratio"]), color="tab:green", label="sharpness output / input")
    axes[3].plot(frames, _series(pf["ghosting_fraction"]), color="tab:brown", label="ghosted share of face")
    axes[3].axhline(1.0, color="tab:gray", lw=0.8, ls="--")
    axes[3].set_ylabel("detail")
    axes[4].plot(frames, _series(pf["warp_error_input"]), color="tab:gray", label="input")
    axes[4].plot(frames, _series(pf["warp_error_output"]), color="tab:blue", label="output")
    ratio = report["temporal"]["warp_ratio"]
    axes[4].set_title(f"warping error under input flow (ratio output/input = {ratio:.3f})" if ratio else "warping error")
    axes[4].set_ylabel("mean |diff|")
    if eyes:
        axes[5].plot(frames, _series(pf["eye_openness_input"]), color="tab:gray", label="input")
        axes[5].plot(frames, _series(pf["eye_openness_output"]), color="tab:blue", label="output")
        corr = (report.get("eyes") or {}).get("openness_correlation")
        axes[5].set_title("eye openness (lid gap / eye width)" + (f", correlation {corr:.3f}" if corr is not None else ""))
        axes[5].set_ylabel("openness")
        axes[5].legend(loc="lower right")
    axes[-1].set_xlabel("frame")
    still = np.asarray(pf["still"], bool)
    for ax in axes:
        for i in np.nonzero(still)[0]:
            ax.axvspan(i - 0.5, i + 0.5, color="tab:green", alpha=0.08, lw=0)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="lower right")
    axes[3].legend(loc="upper right")
    axes[4].legend(loc="upper right")
    return _save(fig, path)


def contact_sheet_png(pairs: list[tuple[np.ndarray, np.ndarray]], path: str | Path, columns: int = 2) -> Path:
    """Side-by-side (input | output) face crops, ``columns`` pairs per row, written as a PNG."""
    if not pairs:
        raise ValueError("no frame pairs to draw a contact sheet from")
    size = pairs[0][0].shape[0]
    tiles = []
    for inp, out in pairs:
        tile = np.hstack([inp, out])
        cv2.putText(tile, "input", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        cv2.putText(tile, "output", (size + 4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(cv2.copyMakeBorder(tile, 2, 2, 2, 2, cv2.BORDER_CONSTANT, value=(40, 40, 40)))
    while len(tiles) % columns:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i : i + columns]) for i in range(0, len(tiles), columns)]
    sheet = np.vstack(rows)
    return write_image(path, sheet)


STAGE_COLOURS = {
    "capture": "tab:gray",
    "landmarks": "tab:blue",
    "align": "tab:cyan",
    "occlusion": "tab:olive",
    "swap": "tab:red",
    "merge": "tab:orange",
    "mark": "tab:purple",
    "output": "tab:green",
}


def bench_png(report: dict, path: str | Path) -> Path:
    """Latency distribution (capture -> sink) per configuration and a stacked bar of the median
    per-stage milliseconds per configuration."""
    runs = report["runs"]
    names = [r["name"] for r in runs]
    fig = _figure(12, 4.8)
    ax_lat, ax_stage = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.3, 1]})
    data = [np.asarray(r["latency_ms_samples"], np.float64) for r in runs]
    nonempty = [d if d.size else np.array([np.nan]) for d in data]
    ax_lat.violinplot([d[np.isfinite(d)] if np.isfinite(d).any() else np.array([0.0]) for d in nonempty], showmedians=True)
    for i, d in enumerate(data, start=1):
        if np.isfinite(d).any():
            p95 = float(np.percentile(d[np.isfinite(d)], 95))
            ax_lat.plot([i - 0.2, i + 0.2], [p95, p95], color="black", lw=1)
    ax_lat.set_xticks(range(1, len(names) + 1), names, rotation=20, ha="right", fontsize=8)
    ax_lat.set_ylabel(f"latency ms, {report.get('latency_label', 'capture -> sink')} (bar = p95)")
    ax_lat.set_title("latency distribution")
    ax_lat.grid(alpha=0.3, axis="y")

    bottom = np.zeros(len(runs))
    for stage, colour in STAGE_COLOURS.items():
        vals = np.array([(r["stages_ms"].get(stage) or {}).get("p50") or 0.0 for r in runs])
        ax_stage.bar(range(len(runs)), vals, bottom=bottom, color=colour, label=stage)
        bottom += vals
    ax_stage.set_xticks(range(len(runs)), names, rotation=20, ha="right", fontsize=8)
    ax_stage.set_ylabel("median ms per frame")
    ax_stage.set_title("per-stage time (p50, stacked)")
    ax_stage.legend(fontsize=8)
    ax_stage.grid(alpha=0.3, axis="y")
    fig.suptitle(report.get("title", "swapcam bench"), fontsize=10)
    return _save(fig, path)


def soak_png(report: dict, path: str | Path) -> Path:
    """Resident memory, latency p95/p50 per interval and load average over a soak; warm-up shaded,
    the two compared windows marked."""
    samples = report["samples"]
    result = report["result"]
    t = np.array([s["t_s"] for s in samples]) / 60
    fig = _figure(10, 7)
    ax_mem, ax_lat, ax_load = fig.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": [2, 2, 1]})
    ax_mem.plot(t, [s["rss_mb"] for s in samples], ".-", color="tab:blue")
    ax_mem.set_ylabel("resident MB")
    ax_mem.set_title(f"memory growth after warm-up {result['memory_growth_mb']:+.2f} MB "
                     f"(slope {result['memory_slope_mb_per_hour']:+.2f} MB/h)", fontsize=9)
    ax_lat.plot(t, _series([s["latency_p95_ms"] for s in samples]), ".-", color="tab:red", label="p95")
    ax_lat.plot(t, _series([s["latency_p50_ms"] for s in samples]), ".-", color="tab:orange", label="p50")
    ax_lat.set_ylabel("latency ms (per interval)")
    ax_lat.set_title(f"p95 drift {100 * result['p95_drift']:+.1f} % (window medians "
                     f"{result['latency_p95_ms_first_window']:.1f} -> {result['latency_p95_ms_last_window']:.1f} ms)",
                     fontsize=9)
    ax_lat.legend(fontsize=8)
    ax_load.plot(t, _series([s["load_1min"] for s in samples]), color="tab:gray")
    ax_load.set_ylabel("load (1 min)")
    ax_load.set_xlabel("minutes")
    warm = result["warmup_s"] / 60
    window = result["window_s"] / 60
    end = float(t[-1]) if len(t) else warm
    for ax in (ax_mem, ax_lat, ax_load):
        ax.axvspan(0, warm, color="tab:gray", alpha=0.12, lw=0)
        ax.axvspan(warm, warm + window, color="tab:green", alpha=0.08, lw=0)
        ax.axvspan(end - window, end, color="tab:purple", alpha=0.08, lw=0)
        ax.grid(alpha=0.3)
    fig.suptitle(report.get("title", "swapcam soak") + "  (grey: warm-up; green/purple: compared windows)",
                 fontsize=10)
    return _save(fig, path)
