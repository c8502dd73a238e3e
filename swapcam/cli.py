"""The `swapcam` command: one entry, one subcommand per job.

Each subcommand lives in its own module exposing ``configure_parser(parser)`` and
``main(args) -> int``. Modules are imported only when their command runs, so `swapcam live`
never imports torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "extract": ("swapcam.extract_cli", "videos/photos -> aligned faceset (faceset.jsonl + crops)"),
    "train": ("swapcam.train_cli", "train a DF/LIAE autoencoder on a src and a dst faceset"),
    "export": ("swapcam.export_cli", "export encoder + src decoder as one DFM-compatible ONNX model"),
    "occlusion-train": ("swapcam.occlusion_train_cli", "train the occlusion model (hands, glasses, objects in front of the face)"),
    "occlusion-export": ("swapcam.occlusion_export_cli", "export the occlusion model as ONNX with its training record"),
    "live": ("swapcam.live_cli", "live swap: camera/video -> model -> virtual camera/window/file"),
    "app": ("swapcam.app_cli", "the desktop window: preview, source, targets, controls, outputs (+ control API)"),
    "bench": ("swapcam.bench_cli", "measure the live pipeline: per-stage ms, latency, fps"),
    "eval": ("swapcam.eval_cli", "measure swap quality: identity, pose/expression, stability"),
    "verify": ("swapcam.verify_cli", "does a video or image carry swapcam's watermark? (model fingerprint, time)"),
}


def _top_level_help() -> str:
    lines = ["usage: swapcam COMMAND [options]   (swapcam COMMAND --help for its options)", "", "commands:"]
    lines += [f"  {name:<16} {desc}" for name, (_, desc) in COMMANDS.items()]
    return "\n".join(lines)


def build_parser(command: str) -> tuple[argparse.ArgumentParser, object]:
    """Return the parser for ``command`` and the module that runs it."""
    module_name, description = COMMANDS[command]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(
        prog=f"swapcam {command}",
        description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    module.configure_parser(parser)
    return parser, module


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``swapcam COMMAND ...``; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_top_level_help())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"swapcam: unknown command {command!r}\n\n{_top_level_help()}", file=sys.stderr)
        return 2
    parser, module = build_parser(command)
    args = parser.parse_args(rest)
    try:
        return int(module.main(args) or 0)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
