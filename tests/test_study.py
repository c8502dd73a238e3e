"""measure.study's bookkeeping: when each variant is scored, and the table of every scored point."""

from __future__ import annotations

from measure.eval_report import COLUMNS
from measure.study import REFERENCE_VARIANT, point_targets, points_table


def test_each_variant_is_scored_at_its_own_points_or_the_plans():
    plan = {"budget_cpu_minutes": 30, "points": 3,
            "variants": {"scratch": ["--from-scratch"], "base": {"args": ["--base", "B"], "points_at": [0, 10]}}}
    assert point_targets(plan, plan["variants"]["scratch"]) == [600.0, 1200.0, 1800.0]
    assert point_targets(plan, plan["variants"]["base"]) == [0.0, 600.0]
    plan["points_at"] = [5, 10]  # the plan's points override the even spacing, a variant's own override both
    assert point_targets(plan, plan["variants"]["scratch"]) == [300.0, 600.0]
    assert point_targets(plan, plan["variants"]["base"]) == [0.0, 600.0]


def test_points_table_has_a_row_per_point_and_a_column_per_clip():
    values = {label: 0.5 for label, *_ in COLUMNS}
    values["top-1 as target"] = None  # a measure eval could not make
    variants = {
        "base": {"points": [{"cpu_s": 0.0, "steps": 0, "clips": {"grid_s26": values}},
                            {"cpu_s": 612.0, "steps": 455, "clips": {"grid_s26": values, "helmet_selfie": values}}]},
        REFERENCE_VARIANT: {"points": [{"cpu_s": 0.0, "steps": 0, "clips": {"grid_s26": values}}]},
    }
    lines = points_table(variants).splitlines()
    assert lines[0].startswith("| variant | CPU min | steps | grid_s26: dlib / top-1") and "helmet_selfie:" in lines[0]
    assert len(lines) == 2 + 3
    assert lines[2].startswith("| base | 0.0 | 0 | 0.500 / n/a / 0.50") and lines[2].endswith("| — |")
    three_digits = sum(1 for label, _, digits, _, _ in COLUMNS if digits >= 3 and label != "top-1 as target")
    assert lines[3].startswith("| base | 10.2 | 455 |") and lines[3].count("0.500") == 2 * three_digits
    assert lines[0].count("dlib /") == 2 and all(short in lines[0] for short in ("sharp", "warp"))
    # a name in the header and a value in the cell for every measure
    assert lines[0].split("|")[4].count(" / ") == lines[2].split("|")[4].count(" / ") == len(COLUMNS) - 1
    assert lines[4].startswith(f"| {REFERENCE_VARIANT} | — | 0 |")
