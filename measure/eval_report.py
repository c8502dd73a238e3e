"""`swapcam eval` as a markdown table: one row per scored swap (the model, and the one-photo reference).

``markdown_table({"demo.onnx": report, "one-photo (s1.png)": reference_report})`` gives the table a
model card quotes, with the goals of the quality issue in its header so a reader sees at once which
figures meet them.
"""

from __future__ import annotations

# (label, path in the eval report, digits, goal text, lower is better)
COLUMNS = (
    ("dlib distance to target", ("identity", "dlib_distance_to_target", "mean"), 3, "<= 0.40", True),
    ("top-1 as target", ("identity", "top1_accuracy"), 2, "1.00", False),
    ("sharpness / input", ("detail", "sharpness_ratio", "mean"), 2, ">= 0.5", False),
    ("ghosting", ("detail", "ghosting_fraction", "mean"), 3, "~0", True),
    ("pose error (deg)", ("pose_error_deg", "mean_of_axes", "mean"), 2, "<= 3", True),
    ("expression error (IOD)", ("expression_error_iod", "mean"), 3, "<= 0.04", True),
    ("warp-error ratio", ("temporal", "warp_ratio"), 2, "<= 1.1", True),
    ("eye openness corr.", ("eyes", "openness_correlation"), 2, ">= 0.95", False),
    ("closed-eye openness error", ("eyes", "closed", "mean_abs_difference"), 3, "<= 0.03", True),
    ("iris error (% eye width)", ("eyes", "iris_error_pct", "mean"), 1, "<= 5", True),
)


def _dig(report: dict, path: tuple[str, ...]):
    for key in path:
        report = report.get(key) if isinstance(report, dict) else None
    return report


def row_values(report: dict) -> dict[str, float | None]:
    """{column label: value} of one eval report."""
    return {label: _dig(report, path) for label, path, *_ in COLUMNS}


def markdown_table(reports: dict[str, dict]) -> str:
    """A markdown table with one row per named eval report, the goals as the second header row."""
    header = "| swap | " + " | ".join(label for label, *_ in COLUMNS) + " |"
    goals = "| goal | " + " | ".join(goal for _, _, _, goal, _ in COLUMNS) + " |"
    rule = "|---|" + "---|" * len(COLUMNS)
    rows = []
    for name, report in reports.items():
        cells = []
        for _, path, digits, _, _ in COLUMNS:
            value = _dig(report, path)
            cells.append("n/a" if value is None else f"{value:.{digits}f}")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join([header, rule, goals, *rows]) + "\n"
