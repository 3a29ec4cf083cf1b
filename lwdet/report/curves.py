"""Training curves as small multiples: one panel per group of detectors (neck / head family, engine models,
distilled runs), at most ``PANEL_LINES`` lines a panel, the baseline as a black reference line in every panel, and
each legend beside its panel, never over the lines."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lwdet.report.analysis import CURVES
from lwdet.report.plots import BASELINE, pyplot, save, short_name
from lwdet.report.targets import role

PANEL_LINES = 8  # detectors per panel (plus the baseline): tab10 keeps them apart
LITE = ("lite", "nano", "p45")
# group title, in the order the panels are drawn
GROUPS = (
    "SPPF neck, YOLOv5n head",
    "ASPP neck",
    "lite / nano neck or head",
    "engine models (YOLO11n, YOLO26n, ...)",
    "distilled from a teacher",
    "other",
)


def curve_group(row: dict) -> str:
    """The panel a detector's curves go to, from its row's neck / head / teacher columns."""
    neck, head = str(row.get("neck") or ""), str(row.get("head") or "")
    if row.get("teacher"):
        return GROUPS[4]
    if neck in LITE or head in LITE:
        return GROUPS[2]
    if neck == "aspp":
        return GROUPS[1]
    if neck == "sppf":
        return GROUPS[0]
    return GROUPS[3] if role(row) == "engine" else GROUPS[5]  # a study row from a model YAML: no neck / head


def panels(rows: Sequence[dict], have: set[str]) -> list[tuple[str, list[str]]]:
    """(title, models) per panel, in GROUPS order, each at most PANEL_LINES models; only models in ``have``."""
    by_group: dict[str, list[str]] = {}
    for r in rows:
        if str(r.get("model")) in have:
            by_group.setdefault(curve_group(r), []).append(str(r.get("model")))
    out = []
    for g in GROUPS:
        models = by_group.get(g, [])
        chunks = [models[i : i + PANEL_LINES] for i in range(0, len(models), PANEL_LINES)]
        out += [(f"{g} ({k + 1}/{len(chunks)})" if len(chunks) > 1 else g, c) for k, c in enumerate(chunks)]
    return out


def curve_figure(runs: dict[str, dict[str, list[float]]], rows: Sequence[dict], column: str, label: str):
    """One panel per group for one epoch-CSV column; None when no run has the column."""
    have = {m for m, cols in runs.items() if column in cols}
    layout = panels(rows, have)
    if not layout:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(len(layout), 1, figsize=(10.0, 0.6 + 2.3 * len(layout)), sharex=True, squeeze=False)
    colors = plt.get_cmap("tab10").colors

    def draw(ax, model, **kw):
        cols = runs[model]
        few = len(cols[column]) <= 3  # a line through one or two points is invisible: mark them
        ax.plot(
            cols.get("epoch", list(range(1, len(cols[column]) + 1))),
            cols[column],
            label=short_name(model),
            marker="o" if few else None,
            ms=3,
            **kw,
        )

    for ax, (title, models) in zip(axes[:, 0], layout):
        if BASELINE in have and BASELINE not in models:
            draw(ax, BASELINE, color="k", lw=1.6, ls="--")
        for i, model in enumerate(models):
            base = model == BASELINE
            draw(
                ax,
                model,
                color="k" if base else colors[i % len(colors)],
                lw=1.6 if base else 1.3,
                ls="--" if base else "-",
            )
        ax.set_title(title, fontsize=9, loc="left")
        ax.set_ylabel(label, fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    axes[-1, 0].set_xlabel("epoch")
    fig.suptitle(
        f"{label} per epoch (black dashed: {BASELINE}; names drop the prefix '{BASELINE}-')",
        fontsize=10,
        x=0.01,
        ha="left",
    )
    fig.tight_layout()
    return fig


def plot_curves(runs: dict[str, dict[str, list[float]]], rows: Sequence[dict], out: Path) -> list[Path]:
    """``curve_<name>.png`` per CURVES metric (``runs``: model -> its epoch CSV, ``lwdet.report.rows.epoch_curves``)."""
    written = []
    for name, (column, label) in CURVES.items():
        fig = curve_figure(runs, rows, column, label)
        if fig is not None:
            written.append(save(fig, out / f"curve_{name}.png"))
    return written
