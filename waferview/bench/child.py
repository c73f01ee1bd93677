"""The child process of the peak-memory figure: one run, then its memory on stdout as one JSON line.

    python -m waferview.bench.child CACHE.wvtrace BATCH MESH PLACEMENT PREDICTOR

VmHWM (peak resident set, Linux) counts every page the process touched, including the memory-mapped
trace; RssAnon is sampled every few milliseconds to separate the process's own memory from the map.
"""

from __future__ import annotations

import sys
import threading
import time


def main(argv: list[str]) -> int:
    import orjson

    from waferview.bench.measure import status_kb
    from waferview.sim.engine import Engine
    from waferview.trace.cache import load_cache
    from waferview.wafer.hardware import load_hardware

    path, batch, mesh, placement, predictor = argv
    baseline_kb = status_kb("VmHWM")
    peak_anon = [status_kb("RssAnon") or 0]
    stop = threading.Event()

    def sample():
        while not stop.wait(0.005):
            value = status_kb("RssAnon")
            if value is not None and value > peak_anon[0]:
                peak_anon[0] = value

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t = time.perf_counter()
    trace = load_cache(path)[0]
    engine = Engine(trace, load_hardware(mesh), batch=int(batch), placement=placement, predictor=predictor)
    summary = engine.run()
    seconds = time.perf_counter() - t
    stop.set()
    sampler.join()
    print(orjson.dumps({"vm_hwm_kb": status_kb("VmHWM"), "baseline_vm_hwm_kb": baseline_kb,
                        "rss_anon_peak_kb": peak_anon[0], "seconds": seconds,
                        "layers": summary["layers_total"], "token_selections": summary["token_selections"]}).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
