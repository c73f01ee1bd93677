"""What the live view knows before any engine exists (no textual here): header facts, the HBM warning,
the mesh, home experts, rates, and the engine maker the worker thread calls.

All of it is cheap (the batch selection is a seeded permutation), so the screen opens at once; the batch's
counts, the heatmap and the kernels are the worker's business. Bad options fail here, on the main thread,
before the screen opens (one line, exit 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from waferview.report.summary import summary_fields
from waferview.tui.lanes import accepts
from waferview.tui.fmt import HeaderFacts
from waferview.wafer.homes import capacity, home_dies
from waferview.wafer.mesh import Mesh


@dataclass(frozen=True, eq=False)
class AppSetup:
    facts: HeaderFacts
    warnings: tuple[str, ...]        # the HBM warning, longest first ("" when the model fits)
    mesh: Mesh
    home: np.ndarray                 # home die of each expert
    expert_bytes: int
    link_rate: float                 # bytes per ns of one link after efficiency
    layers: int                      # MoE layers
    total: int                       # (step, layer) positions of the run
    summary_of: Callable[[dict], dict]   # engine totals so far -> the summary fields (trace facts first)
    predictors: tuple[str, ...] = ()  # what `r` cycles through (count-only sources: no heatmap)


def hbm_warnings(model, hardware, cap) -> tuple[str, ...]:
    if cap.fits_in_hbm:
        return ()
    tb = cap.expert_bytes * model.num_experts * model.moe_layers / 1e12
    dies, gb = hardware.num_dies, hardware.usable_hbm_bytes / 1e9
    return (f"! {model.key}: {tb:.2f} TB of expert weights do not fit this wafer's usable HBM ({dies} x {gb:.0f} GB);"
            " simulated anyway, no room for copies",
            f"! {model.key}: {tb:.2f} TB of expert weights do not fit the usable HBM ({dies} x {gb:.0f} GB): no copies",
            f"! {model.key}: {tb:.2f} TB of weights do not fit the HBM ({dies}x{gb:.0f} GB): no copies",
            f"! {model.key}: weights do not fit the HBM: no copies")


def app_setup(trace, hardware, *, batch: int | None, seed: int, options, links: str | None = None) -> AppSetup:
    from waferview.links import DEFAULT_LINKS
    from waferview.policies import PREDICTORS
    from waferview.sim.recorded import available_predictors, preview_batch

    m = trace.model
    size, reused, steps = preview_batch(trace, batch, seed, options)     # InputError for a bad --batch or --seed
    mesh = Mesh(hardware.width, hardware.height)
    home = home_dies(m.num_experts, mesh.num_dies)
    cap = capacity(m, hardware, home, float(getattr(options, "bytes_per_param", 2.0)))
    raw = trace.source or ""
    synthetic = bool(getattr(trace, "synthetic", False)) or raw.endswith(" (synthetic)")
    source = Path(raw.removesuffix(" (synthetic)")).name if raw else "in-memory trace"
    facts = HeaderFacts(m.key, f"{hardware.width}x{hardware.height}", size, reused, source, synthetic,
                        getattr(options, "profile", "waferview"), links or DEFAULT_LINKS)
    link_rate = float(hardware.link_bytes_per_ns) * float(getattr(hardware, "link_efficiency", 1.0))
    return AppSetup(facts, hbm_warnings(m, hardware, cap), mesh, home, cap.expert_bytes, link_rate,
                    m.moe_layers, steps * m.moe_layers, lambda totals: summary_fields(trace, totals),
                    available_predictors(trace, PREDICTORS))


def engine_maker(engine_factory, trace, hardware, *, batch, seed, options, links: str | None = None) -> Callable:
    """make_engine(placement, predictor, workload=None, progress=None): the factory called with what it takes
    (a Workload to share and a progress callback are passed only to engines that accept them)."""
    takes_workload, takes_progress = accepts(engine_factory, "workload"), accepts(engine_factory, "progress")

    def make_engine(placement: str, predictor: str, workload=None, progress=None):
        kwargs = dict(batch=batch, seed=seed, placement=placement, predictor=predictor, options=options)
        if links is not None and accepts(engine_factory, "links"):
            kwargs["links"] = links
        if workload is not None and takes_workload:
            kwargs["workload"] = workload
        if progress is not None and takes_progress:
            kwargs["progress"] = progress
        return engine_factory(trace, hardware, **kwargs)

    return make_engine
