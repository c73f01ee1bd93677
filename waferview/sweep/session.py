"""One `waferview sweep` from its parsed options: check everything, then run, write and draw.

Order: the plan (every axis and configuration checked by summary's parser), the outputs and the backend
(plot format and matplotlib, the Ray address) are all checked before any trace is read or generated.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time

import orjson

from waferview.errors import InputError

PLOT_SUFFIXES = (".png", ".svg", ".pdf")


def check_plot(path: str | None) -> None:
    if path is None:
        return
    if os.path.splitext(path)[1].lower() not in PLOT_SUFFIXES:
        raise InputError(f"--plot {path}: expected a .png, .svg or .pdf file name")
    if importlib.util.find_spec("matplotlib") is None:
        raise InputError("--plot needs matplotlib: pip install 'waferview[plot]'")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputError(f"--plot {path}: no such folder {folder}")


def make_pool(args, model_keys):
    from waferview.sweep.traces import sweep_dir

    if args.ray is not None:
        from waferview.sweep.ray_pool import RayPool

        address = args.ray or os.environ.get("RAY_ADDRESS", "")
        if not address:
            raise InputError("--ray: no address given and RAY_ADDRESS is not set (give --ray HOST:PORT or --ray local)")
        return RayPool(address)
    workers = (os.cpu_count() or 1) if args.workers is None else args.workers
    if workers < 0:
        raise InputError(f"--workers {workers}: expected 0 (in this process) or more")
    if workers == 0:
        from waferview.sweep.driver import InlinePool

        return InlinePool()
    from waferview.sweep.local import LocalPool

    return LocalPool(workers, model_keys, str(sweep_dir() / "numba-warm.lock"))


def _check_outputs(args) -> None:
    to_stdout = [name for name, v in (("--csv", args.csv), ("--jsonl", args.jsonl)) if v == "-"]
    if args.json:
        to_stdout.append("--json")
    if len(to_stdout) > 1:
        raise InputError(f"{' and '.join(to_stdout)} both want stdout: give one of them a FILE")
    for name, path in (("--csv", args.csv), ("--jsonl", args.jsonl)):
        if path and path != "-" and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise InputError(f"{name} {path}: no such folder")


def run_sweep(args, spec) -> int:
    from waferview.sweep.driver import run_plan
    from waferview.sweep.output import RowFile, SweepProgress, Table, columns, speedup_chart
    from waferview.sweep.plan import load, make_plan
    from waferview.sweep.results import RowCache
    from waferview.sweep.traces import sweep_dir

    plan = make_plan(spec)
    _check_outputs(args)
    check_plot(args.plot)
    if args.plot and not any((c.ns.placement, c.ns.predictor) == ("base", "off") for c in plan.configs):
        raise InputError("--plot draws throughput and hops over Base: add Base to --strategies")
    if args.ray is not None and importlib.util.find_spec("ray") is None:
        raise InputError("--ray needs Ray: pip install 'waferview[ray]'")
    pool = make_pool(args, [])
    if hasattr(pool, "connect"):
        pool.connect()            # an unreachable address is bad input, before any trace is read
    try:
        load(plan)
        if hasattr(pool, "model_keys"):
            pool.model_keys = tuple(sorted({t.model_key for t in plan.traces}))
        cols = columns(plan.axis_columns)
        files = [RowFile(path, kind, cols) for kind, path in (("csv", args.csv), ("jsonl", args.jsonl)) if path]
        table = None
        if not args.json and not any(path == "-" for path in (args.csv, args.jsonl)):
            hint = [dict(c.columns) for c in plan.configs]
            table = Table(plan.varying_columns + ["strategy"], hint)
        progress = SweepProgress(len(plan.configs), 0)

        def emit(row):
            progress.clear()
            for f in files:
                f.write(row)
            if table is not None:
                table.print(table.line(row))
            progress.advance()

        def on_cached(n):
            progress.cached = n   # advance() counts them in as they are emitted

        if table is not None:
            table.print(table.header())
        started = time.perf_counter()
        try:
            outcome = run_plan(plan, pool, RowCache(sweep_dir() / "rows"), fresh=args.fresh, emit=emit,
                               on_cached=on_cached)
        except KeyboardInterrupt:
            progress.clear()
            print(f"waferview sweep: interrupted after {progress.done} of {len(plan.configs)} rows; run the same "
                  "command again to finish (finished rows are cached)", file=sys.stderr)
            raise
        finally:
            progress.clear()
            for f in files:
                f.close()
    finally:
        if hasattr(pool, "close"):
            pool.close()
    seconds = time.perf_counter() - started
    where = (f"{outcome.workers} local worker{'s' if outcome.workers != 1 else ''}" if outcome.backend == "local"
             else outcome.backend)
    n = len(outcome.rows)
    print(f"waferview sweep: {n} row{'s' if n != 1 else ''} ({outcome.computed} computed, "
          f"{outcome.cached} from the cache, {outcome.failed} failed) in {seconds:.1f} s on {where}", file=sys.stderr)
    if args.json:
        meta = {"configurations": len(outcome.rows), "computed": outcome.computed, "cached": outcome.cached,
                "failed": outcome.failed, "seconds": seconds, "backend": outcome.backend, "workers": outcome.workers,
                "axes": {a.column: a.labels for a in plan.axes}, "columns": cols}
        print(orjson.dumps({"rows": [{c: r.get(c) for c in cols} for r in outcome.rows], "sweep": meta,
                            "provenance": _provenance(args, plan)}).decode())
    elif table is not None:
        if spec.paper:
            from waferview.sweep.paper import report

            table.print("\n" + report(outcome.rows))
        elif args.plot is None:
            chart = speedup_chart(outcome.rows, plan.varying_columns)
            if chart:
                table.print("\n" + chart)
    if args.plot:
        from waferview.sweep.figures import plot_fig12

        for path in plot_fig12(outcome.rows, args.plot):
            print(f"waferview sweep: wrote {path}", file=sys.stderr)
    return 1 if outcome.failed else 0


def _provenance(args, plan) -> dict:
    """What produced the rows (report.provenance), like every --json output: the models and wafers swept,
    and the axes as run options."""
    from waferview.models import get_model
    from waferview.report.provenance import provenance_from_args
    from waferview.wafer.hardware import load_hardware

    models = list(dict.fromkeys(t.model_key for t in plan.traces))
    meshes = list(dict.fromkeys(c.ns.mesh for c in plan.configs))
    synthetic = {bool(t.synthetic) for t in plan.traces}
    model = [get_model(m) for m in models] if len(models) > 1 else get_model(models[0])
    hardware = [load_hardware(m) for m in meshes] if len(meshes) > 1 else load_hardware(meshes[0])
    return provenance_from_args(args, model=model, hardware=hardware,
                                synthetic=synthetic.pop() if len(synthetic) == 1 else None,
                                run_options={a.column: a.labels for a in plan.axes})
