"""A shareable Markdown report of a comparison: tables, the most disputed images, plots as PNG files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from studio.core.errors import StudioError
from studio.eval.compare import HEADLINE, Comparison
from studio.eval.plots import Plot, render_plots

REPORT_NAME = "report.md"


def _cell(value: float | None) -> str:
    return "–" if value is None or value < 0 else f"{value:.3f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def render_markdown(comparison: Comparison, plots: Sequence[Plot], *, worst: int = 20) -> str:
    """The report's text; the plots' PNG files sit beside it."""
    first = comparison.results[0]
    names = comparison.run_names
    lines = [
        f"# Comparison of {', '.join(names)}",
        "",
        f"Ground truth: **{first.gt_name}**; IoU type: **{first.data.iou_type}**; "
        f"{len(comparison.images)} images. COCO metrics (equal to pycocotools' COCOeval); error counts at "
        f"score >= {first.conf:g} and IoU >= 0.5.",
        "",
        "## Metrics",
        "",
    ]
    metric_rows = [[m, *(_cell(r.metrics[m]) for r in comparison.results)] for m in HEADLINE]
    speeds = [r.speed_ms_per_image for r in comparison.results]
    metric_rows.append(["ms / image", *("–" if s is None else f"{s:.1f}" for s in speeds)])
    for key in ("false_positives", "misses", "confusions"):
        metric_rows.append([key.replace("_", " "), *(str(r.error_totals()[key]) for r in comparison.results)])
    lines += _table(["metric", *names], metric_rows)
    deltas = comparison.deltas()
    if deltas:
        lines += ["", f"### Deltas against {names[0]}", ""]
        lines += _table(["metric", *deltas], [[m, *("–" if d[m] is None else f"{d[m]:+.3f}" for d in deltas.values())] for m in HEADLINE])
    lines += ["", "## AP per class", ""]
    classes = list(first.per_class)
    lines += _table(
        ["class", "objects", *names],
        [[c, str(first.per_class[c]["gt"]), *(_cell(r.per_class[c]["ap"]) for r in comparison.results)] for c in classes],
    )
    rows = comparison.worst(worst)
    lines += ["", "## Images where the runs disagree most", ""]
    if rows:
        lines += _table(
            ["image", "disagreement", "IoU spread", "class conflicts",
             *(f"{n}: FP / miss / conf." for n in names)],
            [[f"{row.name} (media {row.media_id})", f"{row.disagreement:.2f}", f"{row.iou_spread:.2f}",
              str(row.class_conflicts), *(f"{e.false_positives} / {e.misses} / {e.confusions}" for e in row.errors)]
             for row in rows],
        )
    else:
        lines.append("No image has an error at this operating point.")
    lines += ["", "## Plots", ""]
    for plot in plots:
        lines += [f"### {plot.title}", "", f"![{plot.title}]({plot.file_name})", ""]
    return "\n".join(lines)


def write_report(
    comparison: Comparison, out_dir: Path, *, plots: Sequence[Plot] | None = None, worst: int = 20
) -> Path:
    """Write report.md and its PNGs into `out_dir` (created if needed); returns the report's path.

    `plots` already rendered (the comparison window has them) are written as they are.
    """
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StudioError(f"cannot create the report folder {out_dir}: {exc.strerror}") from exc
    if not out_dir.is_dir():
        raise StudioError(f"{out_dir} is not a folder")
    plots = render_plots(comparison.results) if plots is None else plots
    for plot in plots:
        (out_dir / plot.file_name).write_bytes(plot.png)
    report = out_dir / REPORT_NAME
    report.write_text(render_markdown(comparison, plots, worst=worst), encoding="utf-8")
    return report
