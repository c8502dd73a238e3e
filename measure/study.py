"""A fixed-budget training study: recipe variants trained for the same CPU time, scored by `swapcam eval`.

``python -m measure.study PLAN.json --work DIR`` trains every variant of the plan with `swapcam train`,
in chunks, until each has used the same CPU time (process CPU seconds of the trainer, so the figures do
not depend on what else the machine was doing), exports a model after each chunk and scores it with
`swapcam eval` on clips of people none of the variants trained on. Each variant's figures land in
``DIR/NAME/points.json`` (rewritten atomically after every point, so a killed study resumes where it
was, and variants can run in parallel processes with ``--only``); ``--report`` draws the
quality-vs-time curves (PNG) and the table (markdown) from them.

The plan (JSON)::

    {"budget_cpu_minutes": 45, "points": 3, "eval_frames": 120,
     "src": "FACESET", "dst": "FACESET", "target": "FACESET", "gallery": ["FACESET"],
     "clips": ["VIDEO", ...],
     "common": ["--preset", "lite", "--batch-size", "16", ...],
     "variants": {"name": ["--extra", "args"], ...}}

Optional: ``dst`` (runs from a pretrained base need none; a variant may add ``--dst``), ``points_at``
(CPU minutes of the points instead of ``budget_cpu_minutes`` / ``points``; 0 scores a base's untrained
start; a variant given as ``{"args": [...], "points_at": [...]}`` has its own), ``reference`` (a photo of
the target: its one-photo swap is scored once, a flat line to beat).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from measure.eval_report import COLUMNS, row_values
from realtime.util.atomic_files import write_text

def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(cmd: list[str]) -> float:
    """Run ``cmd`` to completion (its output passes through); returns its CPU seconds."""
    before = _children_cpu_s()
    proc = subprocess.run(cmd)
    if proc.returncode != 0:
        raise SystemExit(f"study: {' '.join(cmd[:4])} ... exited with {proc.returncode}")
    return _children_cpu_s() - before


def _steps(run_dir: Path) -> int:
    """The step a run's checkpoint holds."""
    from training.checkpoint import load_checkpoint

    return load_checkpoint(run_dir).step


def _swapcam(*args: str) -> list[str]:
    return [sys.executable, "-m", "swapcam", *args]


def point_targets(plan: dict, spec) -> list[float]:
    """The trainer CPU seconds at which a variant (``spec``: its args, or {"args", "points_at"}) is scored:
    its own ``points_at``, else the plan's, else ``points`` evenly spaced up to ``budget_cpu_minutes``."""
    minutes = (spec.get("points_at") if isinstance(spec, dict) else None) or plan.get("points_at")
    if minutes:
        return [m * 60.0 for m in minutes]
    budget = plan["budget_cpu_minutes"] * 60.0
    return [budget * (k + 1) / plan["points"] for k in range(plan["points"])]


def run_variant(plan: dict, work: Path, name: str) -> dict:
    """Train, export and score one variant of ``plan`` at its equal CPU-time points; returns its state."""
    spec = plan["variants"][name]  # its extra arguments, or {"args": [...], "points_at": [...]}
    extra = spec["args"] if isinstance(spec, dict) else spec
    state_path = work / name / "points.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {"args": extra, "cpu_s": 0.0, "steps": 0,
                                                                            "points": []}
    run_dir = work / name / "run"
    train = ["train", "--src", plan["src"], *(["--dst", plan["dst"]] if plan.get("dst") else []), "--out", str(run_dir),
             *plan["common"], *extra]
    for target_s in point_targets(plan, spec):
        if any(p["cpu_s"] >= target_s * 0.98 for p in state["points"]):
            continue
        if target_s == 0 and ("--from-scratch" in extra or state["points"]):
            continue  # an untrained point only for runs that start from a base (its zero-shot swap)
        t0 = time.time()
        if target_s == 0:
            _run(_swapcam(*train, "--steps", "0"))
            state["steps"] = 0
        elif state["cpu_s"] < target_s * 0.98:  # else: trained already, its scoring was cut short
            # the trainer stops its loop at this much CPU time; start-up is counted too (in cpu_s)
            state["cpu_s"] += _run(_swapcam(*train, "--cpu-minutes", f"{(target_s - state['cpu_s']) / 60:.3f}"))
            state["steps"] = _steps(run_dir)
            write_text(state_path, json.dumps(state, indent=2))
        model = work / name / f"step{state['steps']}.onnx"
        _run(_swapcam("export", str(run_dir), "--out", str(model), "--fp16", "--force",
                      "--consent", "study model, not shipped"))
        point = {"cpu_s": state["cpu_s"], "steps": state["steps"], "wall_s": time.time() - t0,
                 "clips": _score(plan, model, work / name / f"eval{state['steps']}")}
        state["points"].append(point)
        write_text(state_path, json.dumps(state, indent=2))
        print(f"study: {name} at {state['cpu_s'] / 60:.1f} CPU-min ({state['steps']} steps): "
              + json.dumps(point["clips"]), flush=True)
    return state


def _score(plan: dict, model: Path, out_prefix: Path) -> dict:
    """`swapcam eval` of ``model`` (a model file or the one-photo swap's photo) on every clip of the plan:
    {clip stem: eval_report.row_values}."""
    scores = {}
    for clip in plan["clips"]:
        out = out_prefix.parent / f"{out_prefix.name}_{Path(clip).stem}"
        _run(_swapcam("eval", clip, "--model", str(model), "--target", plan["target"], "--gallery",
                      *plan["gallery"], "--max-frames", str(plan["eval_frames"]), "--out", str(out),
                      "--no-progress"))
        scores[Path(clip).stem] = row_values(json.loads((out / "eval.json").read_text()))
    return scores


REFERENCE_VARIANT = "one-photo"


def run_reference(plan: dict, work: Path) -> dict:
    """The one-photo swap of the plan's ``reference`` still, scored once on the same clips (no training:
    a flat line on the curves)."""
    state_path = work / REFERENCE_VARIANT / "points.json"
    if state_path.exists():
        return json.loads(state_path.read_text())
    state_path.parent.mkdir(parents=True, exist_ok=True)
    state = {"args": [], "cpu_s": 0.0, "steps": 0,
             "points": [{"cpu_s": 0.0, "steps": 0, "clips": _score(plan, Path(plan["reference"]), state_path.parent / "eval")}]}
    write_text(state_path, json.dumps(state, indent=2))
    return state


def report(variants: dict[str, dict], png: Path, markdown: Path) -> None:
    """Quality-vs-CPU-time curves (one panel per measure, one line per variant and clip) and the table
    of each variant's last point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from realtime.util.atomic_files import atomic_path

    rows = -(-(len(COLUMNS) + 1) // 4)  # one panel per measure and one for the legend
    fig, axes = plt.subplots(rows, 4, figsize=(18, 4 * rows))
    for ax, (label, _, _, _, lower) in zip(axes.ravel(), COLUMNS):
        for name, state in variants.items():
            for clip in state["points"][0]["clips"] if state["points"] else []:
                xs = [p["cpu_s"] / 60 for p in state["points"]]
                ys = [p["clips"][clip][label] for p in state["points"]]
                ys = [float("nan") if y is None else y for y in ys]
                if name == REFERENCE_VARIANT:  # no training: a level to beat
                    ax.axhline(ys[0], ls="--", lw=1, color="grey")
                    ax.annotate(f"{name} / {clip}", (0, ys[0]), fontsize=6, color="grey")
                    continue
                ax.plot(xs, ys, "o-", label=f"{name} / {clip}")
        ax.set_title(label + (" (lower is better)" if lower else " (higher is better)"), fontsize=9)
        ax.set_xlabel("training CPU minutes")
        ax.grid(alpha=0.3)
    axes.ravel()[-1].axis("off")
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    axes.ravel()[-1].legend(handles, labels, loc="center", fontsize=8)
    fig.tight_layout()
    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    write_text(markdown, points_table(variants))


SHORT_NAMES = {"dlib distance to target": "dlib", "top-1 as target": "top-1", "sharpness / input": "sharp",
               "ghosting": "ghost", "pose error (deg)": "pose °", "expression error (IOD)": "expr",
               "warp-error ratio": "warp", "eye openness corr.": "eyes r", "closed-eye openness error": "closed eye",
               "iris error (% eye width)": "iris %"}


def points_table(variants: dict[str, dict]) -> str:
    """Markdown: one row per scored point of every variant, one column per clip holding the eval measures
    (dlib / top-1 / sharpness / ghosting / pose / expression / warp), as docs/study.md shows them."""
    clips = list(dict.fromkeys(c for st in variants.values() for p in st["points"] for c in p["clips"]))
    short = " / ".join(SHORT_NAMES.get(label, label) for label, *_ in COLUMNS)
    rows = ["| variant | CPU min | steps | " + " | ".join(f"{c}: {short}" for c in clips) + " |",
            "|---|---|---|" + "---|" * len(clips)]
    for name, state in variants.items():
        for point in state["points"]:
            cells = []
            for clip in clips:
                values = point["clips"].get(clip)
                cells.append("—" if values is None else " / ".join(
                    "n/a" if values.get(label) is None else f"{values[label]:.{max(digits, 2)}f}"
                    for label, _, digits, _, _ in COLUMNS))
            minutes = "—" if name == REFERENCE_VARIANT else f"{point['cpu_s'] / 60:.1f}"
            rows.append(f"| {name} | {minutes} | {point['steps']} | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m measure.study", description=__doc__.split("\n\n")[0])
    parser.add_argument("plan", type=Path, help="the study plan (JSON, see the module docstring)")
    parser.add_argument("--work", type=Path, required=True, help="folder for runs, models, evals and study.json")
    parser.add_argument("--only", nargs="*", default=None, help="run only these variants of the plan")
    parser.add_argument("--report", nargs=2, type=Path, metavar=("PNG", "MARKDOWN"),
                        help="instead of training, draw the curves and write the table from the variants' points")
    args = parser.parse_args(argv)
    try:
        plan = json.loads(args.plan.read_text())
    except (OSError, ValueError) as exc:
        print(f"study: cannot read the plan {args.plan}: {exc}", file=sys.stderr)
        return 2
    if args.report:
        names = [*plan["variants"], *([REFERENCE_VARIANT] if plan.get("reference") else [])]
        variants = {name: json.loads((args.work / name / "points.json").read_text())
                    for name in names if (args.work / name / "points.json").exists()}
        report(variants, *args.report)
        print(f"wrote {args.report[0]} and {args.report[1]}")
        return 0
    if plan.get("reference") and (not args.only or REFERENCE_VARIANT in args.only):
        run_reference(plan, args.work)
    for name in args.only or plan["variants"]:
        if name == REFERENCE_VARIANT:
            continue
        if name not in plan["variants"]:
            print(f"study: no variant {name!r} in the plan", file=sys.stderr)
            return 2
        (args.work / name).mkdir(parents=True, exist_ok=True)
        run_variant(plan, args.work, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
