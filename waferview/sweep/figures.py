"""`sweep --plot FILE`: the paper's Fig. 12 layout, and the CSV of the plotted numbers beside it.

Two figures: FILE (throughput over Base) and FILE-hops (hop reduction over Base, log scale). A panel per
model and mesh (and per value of any other axis that varies), batch on the x axis, a bar per strategy
(Base is the line at 1x). The paper's figures are drawn as markers where it gives them (DESIGN.md
section 5): each model's mean Allo+Pred speedup as a dashed line, the DeepSeek 5x5 cells it quotes as
stars, the mean hop reductions per strategy as dotted lines. matplotlib (the `plot` extra) is imported
here only, with the Agg backend. FILE.csv holds every plotted bar (figure, panel keys, batch, strategy,
value) and the paper's value where it gives one.
"""

from __future__ import annotations

import math
import os

from waferview.sweep.output import RowFile
from waferview.sweep.paper import PAPER_ALLO_PRED_BY_MODEL, PAPER_CELLS, PAPER_HOP_REDUCTION_MEANS, extra_axes

PANEL_W, PANEL_H, DPI = 4.5, 3.0, 100         # inches per panel (quarter inches: exact sizes), dots per inch
TOP, BOTTOM = 0.75, 0.5                     # inches above (title, legend) and below the panels
COLOURS = {"EP": "#7f7f7f", "Pred Only": "#1f77b4", "Allo Only": "#ff7f0e", "Allo+Pred": "#2ca02c"}


def _panel_keys(rows: list[dict]) -> list[str]:
    """Columns that split panels: model, mesh, and any other axis column that varies."""
    extra = [k for k in extra_axes(rows) if len({repr(r.get(k)) for r in rows}) > 1]
    return ["sweep_model", "sweep_mesh"] + extra


def plotted(rows: list[dict]) -> tuple[list[str], list[dict]]:
    """The numbers the figures draw: one record per (figure, panel, batch, strategy other than Base)."""
    keys = _panel_keys(rows)
    out = []
    for r in rows:
        if r.get("status") != "ok" or r.get("strategy") == "Base" or r.get("speedup_vs_base") is None:
            continue
        for figure, field in (("speedup", "speedup_vs_base"), ("hop_reduction", "hop_reduction_vs_base")):
            rec = {"figure": figure, **{k[6:] if k.startswith("sweep_") else k: r.get(k) for k in keys},
                   "batch": r.get("batch"), "strategy": r["strategy"], "value": r.get(field),
                   "paper_value": _paper(figure, r)}
            out.append(rec)
    return [k[6:] for k in keys], out


def _paper(figure: str, r: dict):
    if figure == "speedup":
        return PAPER_CELLS.get((r.get("sweep_model"), r.get("sweep_mesh"), r.get("batch"), r["strategy"]))
    return None


def _panels(records, keys):
    panels: dict = {}
    for rec in records:
        panels.setdefault(tuple(rec[k] for k in keys), []).append(rec)
    return panels


def _layout(panel_ids, keys):
    models = list(dict.fromkeys(p[0] for p in panel_ids))
    cols = max(1, max(sum(1 for p in panel_ids if p[0] == m) for m in models))
    return models, cols


def _draw(records, keys, figure: str, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    mine = [r for r in records if r["figure"] == figure]
    panels = _panels(mine, keys)
    models, cols = _layout(list(panels), keys)
    rows_n = len(models)
    width, height = cols * PANEL_W, rows_n * PANEL_H + TOP + BOTTOM
    fig, axes = plt.subplots(rows_n, cols, figsize=(width, height), dpi=DPI, squeeze=False)
    fig.subplots_adjust(left=0.7 / width, right=1 - 0.15 / width, top=1 - TOP / height, bottom=BOTTOM / height,
                        hspace=0.42, wspace=0.2)
    strategies = [s for s in COLOURS if any(r["strategy"] == s for r in mine)]
    strategies += sorted({r["strategy"] for r in mine} - set(strategies))
    never = [s for s in strategies if all(r["value"] is None for r in mine if r["strategy"] == s)]
    if figure == "hop_reduction":   # a strategy that never moves weights (EP) has no bar to draw
        strategies = [s for s in strategies if s not in never]
    colour = {s: COLOURS.get(s, f"C{i + 4}") for i, s in enumerate(strategies)}
    placed = {m: 0 for m in models}
    top = {m: max([max(r["value"] or 0, r["paper_value"] or 0) for r in mine if r[keys[0]] == m]
                  + [PAPER_ALLO_PRED_BY_MODEL.get(m, 0) if figure == "speedup" else 2])
           for m in models}   # one y range per model's row, so its meshes compare by eye
    for pid, recs in panels.items():
        row = models.index(pid[0])
        ax = axes[row][placed[pid[0]]]
        placed[pid[0]] += 1
        batches = sorted({r["batch"] for r in recs})
        n = len(strategies)
        bar_w = 0.8 / max(1, n)
        for j, s in enumerate(strategies):
            for i, b in enumerate(batches):
                rec = next((r for r in recs if r["strategy"] == s and r["batch"] == b), None)
                if rec is None:
                    continue
                x = i - 0.4 + bar_w * (j + 0.5)
                value = rec["value"]
                if value is None:   # no hops at all: a reduction without bound, marked instead of drawn
                    ax.annotate("no\nhops", (x, 1), ha="center", va="bottom", fontsize=6, color=colour[s])
                    continue
                ax.bar(x, value, bar_w * 0.92, color=colour[s], zorder=2)
                if rec["paper_value"] is not None:
                    ax.plot(x, rec["paper_value"], marker="*", color="black", markersize=9, zorder=3)
        if figure == "speedup":
            ax.axhline(1.0, color="black", linewidth=0.8, zorder=1)
            paper = PAPER_ALLO_PRED_BY_MODEL.get(pid[0])
            if paper is not None and "Allo+Pred" in strategies:
                ax.axhline(paper, color=COLOURS["Allo+Pred"], linestyle="--", linewidth=1.1, zorder=1)
                ax.annotate(f"paper {paper:g}x ", (1.0, paper), xycoords=("axes fraction", "data"), ha="right",
                            va="bottom", fontsize=7, color=COLOURS["Allo+Pred"])
            ax.set_ylim(0, top[pid[0]] * 1.18)
        else:
            ax.set_yscale("log")
            for s, v in PAPER_HOP_REDUCTION_MEANS.items():
                if s in colour:
                    ax.axhline(v, color=colour[s], linestyle=":", linewidth=1.1, zorder=1)
            means = [v for s, v in PAPER_HOP_REDUCTION_MEANS.items() if s in colour]
            ax.set_ylim(0.5, max([top[pid[0]]] + means) * 3)
        ax.set_xticks(range(len(batches)), [f"{b:,}" if isinstance(b, int) else str(b) for b in batches], fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="y", linewidth=0.3, alpha=0.6, zorder=0)
        ax.set_title(" ".join(f"{v}" if k in ("model", "mesh") else f"{k}={v}" for k, v in zip(keys, pid)),
                     fontsize=9)
        if placed[pid[0]] == 1:
            ax.set_ylabel("speedup over Base" if figure == "speedup" else "hop reduction", fontsize=8)
        if row == rows_n - 1:
            ax.set_xlabel("batch (requests)", fontsize=8)
    for m in models:
        for c in range(placed[m], cols):
            axes[models.index(m)][c].set_visible(False)
    handles = [Patch(color=colour[s], label=s) for s in strategies]
    if figure == "speedup":
        handles.append(Line2D([], [], color=COLOURS["Allo+Pred"], linestyle="--",
                              label="paper: model's Allo+Pred mean"))
        if any(r["paper_value"] is not None for r in mine):
            handles.append(Line2D([], [], color="black", marker="*", linestyle="", label="paper: quoted cell"))
        title = "Throughput over Base (the paper's Fig. 12 layout)"
    else:
        handles.append(Line2D([], [], color="black", linestyle=":", label="paper: mean per strategy"))
        title = "Hop reduction over Base (log scale)" + (f"; no hops in any run: {', '.join(never)}" if never else "")
    fig.suptitle(title, fontsize=11, y=1 - 0.12 / height)
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 1 - 0.32 / height), handlelength=1.6, columnspacing=1.2)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def image_size(rows: list[dict]) -> tuple[int, int]:
    """(width, height) in pixels of the figures drawn for these rows (the same for both)."""
    keys, records = plotted(rows)
    panels = _panels([r for r in records if r["figure"] == "speedup"], keys)
    models, cols = _layout(list(panels), keys)
    return round(cols * PANEL_W * DPI), round((len(models) * PANEL_H + TOP + BOTTOM) * DPI)


def hops_path(path: str) -> str:
    stem, suffix = os.path.splitext(path)
    return f"{stem}-hops{suffix}"


def plot_fig12(rows: list[dict], path: str) -> list[str]:
    """Draw both figures and write their CSV; returns the paths written."""
    keys, records = plotted(rows)
    if not records:
        return []
    csv_path = os.path.splitext(path)[0] + ".csv"
    cols = ["figure", *keys, "batch", "strategy", "value", "paper_value"]
    out = RowFile(csv_path, "csv", cols)
    try:
        for rec in records:
            out.write({k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in rec.items()})
    finally:
        out.close()
    _draw(records, keys, "speedup", path)
    _draw(records, keys, "hop_reduction", hops_path(path))
    return [path, hops_path(path), csv_path]
