"""`insights --plot FILE`: the co-activation heatmaps of the paper's Figs. 4-5, and their numbers as CSV.

Two panels for one MoE layer l (the middle one): layer N -> N+1 (H[a, b] = tokens choosing a at layer l
and b at layer l+1) and token t -> t+1 (H[a, b] = consecutive decode steps of a request choosing a, then
b, at layer l), from the same count tables as the insights (analysis.insights.layer_counts). Experts are
ordered by frequency (rows by their frequency at layer l, columns by theirs at the target layer), so
structure shows as mass in the top-left corner; the colour scale is clipped at the 99th percentile of
the nonzero counts so a few hot pairs do not wash out the rest. matplotlib (the `plot` extra) is imported
here only, with the Agg backend. FILE.csv: one line per cell (figure, layer, row and column rank and
expert, count), the layer as its index among the MoE layers (titles show the model's layer keys).
"""

from __future__ import annotations

import os

import numpy as np

CLIP_QUANTILE = 0.99
SIZE_IN, DPI = (11.0, 5.5), 100


def panels(tables: dict, layer: int | None = None, layer_ids=None) -> tuple[int, list[dict]]:
    """(MoE layer index, [{"figure", "title", "matrix" (ordered), "rows", "cols" (expert ids in order)}]);
    titles name the model's layer keys (`layer_ids`, e.g. ModelSpec.moe_layer_ids) when given."""
    L = tables["next_layer"].shape[0]
    ids = list(layer_ids) if layer_ids is not None else list(range(L))
    if layer is None:
        layer = max(0, (L - 2) // 2)
    freq = tables["freq_pre"] + tables["freq_dec"]
    out = []
    target = min(layer + 1, L - 1)
    for figure, matrix, col_freq, title in (
            ("next_layer", tables["next_layer"][layer], freq[target], f"layer {ids[layer]} -> {ids[target]}"),
            ("next_token", tables["next_token"][layer], tables["freq_dec"][layer],
             f"token t -> t+1, layer {ids[layer]}")):
        rows = np.lexsort((np.arange(len(freq[layer])),
                           -freq[layer] if figure == "next_layer" else -tables["freq_dec"][layer]))
        cols = np.lexsort((np.arange(len(col_freq)), -col_freq))
        out.append({"figure": figure, "title": title, "matrix": np.asarray(matrix)[np.ix_(rows, cols)],
                    "rows": rows, "cols": cols})
    return layer, out


def clip_value(matrix: np.ndarray, quantile: float = CLIP_QUANTILE) -> float:
    nonzero = matrix[matrix > 0]
    return float(np.quantile(nonzero, quantile)) if nonzero.size else 1.0


def write_csv(path: str, layer: int, items: list[dict]) -> None:
    """The plotted cells, written to a temporary name and renamed (a reader never sees half a file)."""
    lines = ["figure,moe_layer,row_rank,col_rank,row_expert,col_expert,count"]
    for p in items:
        m = p["matrix"]
        for i in range(m.shape[0]):
            lines += [f"{p['figure']},{layer},{i},{j},{int(p['rows'][i])},{int(p['cols'][j])},{int(m[i, j])}"
                      for j in range(m.shape[1])]
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def plot_insights(trace, tables: dict, path: str, layer: int | None = None) -> list[str]:
    """Draw the two heatmaps of one layer and write their CSV; returns the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layer, items = panels(tables, layer, trace.model.moe_layer_ids)
    fig, axes = plt.subplots(1, 2, figsize=SIZE_IN, dpi=DPI)
    fig.subplots_adjust(left=0.06, right=0.95, top=0.84, bottom=0.1, wspace=0.3)
    for ax, p in zip(axes, items):
        m = p["matrix"]
        image = ax.imshow(m, cmap="magma", vmin=0, vmax=clip_value(m), interpolation="nearest", aspect="equal")
        share = _top_share(m)
        ax.set_title(f"{p['title']}\ntop 20% of each row: {share:.0%} of the pairs", fontsize=9)
        ax.set_xlabel("next expert, by frequency rank", fontsize=8)
        ax.set_ylabel("expert, by frequency rank", fontsize=8)
        ax.tick_params(labelsize=7)
        bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03)
        bar.ax.tick_params(labelsize=7)
        bar.set_label(f"co-activations (clipped at the {CLIP_QUANTILE:.0%} quantile)", fontsize=7)
    kind = "synthetic" if trace.synthetic else "recorded"
    fig.suptitle(f"Expert co-activation, {trace.model.key} ({kind} routing, {trace.requests:,} requests): "
                 f"{trace.source}", fontsize=10)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    csv_path = os.path.splitext(path)[0] + ".csv"
    write_csv(csv_path, layer, items)
    return [path, csv_path]


def _top_share(m: np.ndarray) -> float:
    """Share of all pairs in each row's top 20% of entries (the insights' coverage of this one layer)."""
    n = max(1, int(np.ceil(0.2 * m.shape[1])))
    total = m.sum()
    return float(np.sort(m, axis=1)[:, -n:].sum() / total) if total else 0.0
