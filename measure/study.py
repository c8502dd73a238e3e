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


def _swapcam(*args: str) -> list[str]:
    return [sys.executable, "-m", "swapcam", *args]


def run_variant(plan: dict, work: Path, name: str) -> dict:
    """Train, export and score one variant of ``plan`` at its equal CPU-time points; returns its state."""
    extra = plan["variants"][name]
    state_path = work / name / "points.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {"args": extra, "cpu_s": 0.0, "steps": 0,
                                                                            "points": []}
    budget = plan["budget_cpu_minutes"] * 60.0
    run_dir = work / name / "run"
    train = ["train", "--src", plan["src"], "--dst", plan["dst"], "--out", str(run_dir), *plan["common"], *extra]
    for k in range(plan["points"]):
        target_s = budget * (k + 1) / plan["points"]
        if any(p["cpu_s"] >= target_s * 0.98 for p in state["points"]):
            continue
        t0 = time.time()
        if state["cpu_s"] < target_s * 0.98:  # else: trained already, its scoring was cut short
            if not state["steps"]:  # a short probe gives the CPU cost of a step
                state["cpu_s"] += _run(_swapcam(*train, "--steps", "20"))
                state["steps"] += 20
            steps = max(1, round((target_s - state["cpu_s"]) / (state["cpu_s"] / state["steps"])))
            state["cpu_s"] += _run(_swapcam(*train, "--steps", str(steps)))
            state["steps"] += steps
            write_text(state_path, json.dumps(state, indent=2))
        model = work / name / f"step{state['steps']}.onnx"
        _run(_swapcam("export", str(run_dir), "--out", str(model), "--fp16", "--force",
                      "--consent", "study model, not shipped"))
        point = {"cpu_s": state["cpu_s"], "steps": state["steps"], "wall_s": time.time() - t0, "clips": {}}
        for clip in plan["clips"]:
            out = work / name / f"eval_{Path(clip).stem}_{state['steps']}"
            _run(_swapcam("eval", clip, "--model", str(model), "--target", plan["target"], "--gallery",
                          *plan["gallery"], "--max-frames", str(plan["eval_frames"]), "--out", str(out),
                          "--no-progress"))
            report = json.loads((out / "eval.json").read_text())
            point["clips"][Path(clip).stem] = row_values(report)
        state["points"].append(point)
        write_text(state_path, json.dumps(state, indent=2))
        print(f"study: {name} at {state['cpu_s'] / 60:.1f} CPU-min ({state['steps']} steps): "
              + json.dumps(point["clips"]), flush=True)
    return state


def report(variants: dict[str, dict], png: Path, markdown: Path) -> None:
    """Quality-vs-CPU-time curves (one panel per measure, one line per variant and clip) and the table
    of each variant's last point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from realtime.util.atomic_files import atomic_path

    fig, axes = plt.subplots(2, 4, figsize=(18, 8))
    for ax, (label, _, _, _, lower) in zip(axes.ravel(), COLUMNS):
        for name, state in variants.items():
            for clip in state["points"][0]["clips"] if state["points"] else []:
                xs = [p["cpu_s"] / 60 for p in state["points"]]
                ys = [p["clips"][clip][label] for p in state["points"]]
                ax.plot(xs, [float("nan") if y is None else y for y in ys], "o-", label=f"{name} / {clip}")
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
    rows = ["| variant | clip | CPU min | steps | " + " | ".join(label for label, *_ in COLUMNS) + " |",
            "|---|---|---|---|" + "---|" * len(COLUMNS)]
    for name, state in variants.items():
        if not state["points"]:
            continue
        last = state["points"][-1]
        for clip, values in last["clips"].items():
            cells = ["n/a" if values.get(label) is None else f"{values[label]:.3f}" for label, *_ in COLUMNS]
            rows.append(f"| {name} | {clip} | {last['cpu_s'] / 60:.0f} | {last['steps']} | " + " | ".join(cells) + " |")
    write_text(markdown, "\n".join(rows) + "\n")


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
        variants = {name: json.loads((args.work / name / "points.json").read_text())
                    for name in plan["variants"] if (args.work / name / "points.json").exists()}
        report(variants, *args.report)
        print(f"wrote {args.report[0]} and {args.report[1]}")
        return 0
    for name in args.only or plan["variants"]:
        if name not in plan["variants"]:
            print(f"study: no variant {name!r} in the plan", file=sys.stderr)
            return 2
        (args.work / name).mkdir(parents=True, exist_ok=True)
        run_variant(plan, args.work, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
