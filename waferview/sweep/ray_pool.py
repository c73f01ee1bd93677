"""The Ray backend (`--ray ADDRESS`): the local pool's chunks as Ray tasks, one CPU each.

Ray is the optional extra `waferview[ray]`, imported only here and only then. Each trace's arrays go into
the object store once per sweep (put when its first chunk is submitted, dropped after its last), and a
task maps them zero-copy; the task runs the same runner.run_chunk as a local worker, so the rows are bit
for bit those of the local pool. Tasks run with NUMBA_NUM_THREADS=1 and are retried by Ray when a node is
lost (rows already received are not taken twice). The cluster's nodes need waferview installed (the same
version: rows are cached under the driver's version).
"""

from __future__ import annotations

import logging
import socket
import sys
from urllib.parse import urlsplit

from waferview.errors import InputError
from waferview.sweep.local import WORKER_ENV


def _ray_chunk(payload, configs):
    """One chunk on a Ray worker: [(index, result)]."""
    import os

    os.environ.update(WORKER_ENV)
    from waferview.models import model_from_dict
    from waferview.sweep.runner import run_chunk
    from waferview.trace.arrays import TraceArrays

    meta, arrays = payload["meta"], payload["arrays"]
    trace = TraceArrays(model_from_dict(meta["model"], "the sweep's trace"), arrays["prefill_ids"],
                        arrays["decode_ids"], arrays["prefill_offsets"], arrays["decode_offsets"],
                        tuple(meta["request_names"]), tuple(meta["skipped"]), meta["source"], meta["synthetic"])
    return list(run_chunk(trace, configs))


def check_reachable(address: str, timeout: float = 3.0) -> None:
    """A host:port (or ray://host:port) that nothing answers on is bad input: one line, exit 2."""
    if address in ("local", "auto"):
        return
    parts = urlsplit(address if "://" in address else f"ray://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or not port:
        raise InputError(f"--ray {address}: expected host:port, ray://host:port, auto or local")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as e:
        raise InputError(f"--ray {address}: cannot reach a Ray cluster there ({e.strerror or e})") from None


class RayPool:
    name = "ray"

    def __init__(self, address: str):
        self.address = address
        self.workers = 1
        self._started = False

    def connect(self) -> None:
        check_reachable(self.address)
        import ray

        kwargs = dict(runtime_env={"env_vars": dict(WORKER_ENV)}, log_to_driver=False,
                      logging_level=logging.ERROR, configure_logging=True)
        if self.address == "local":
            kwargs.update(address="local", include_dashboard=False)
        else:
            kwargs.update(address=self.address)
        try:
            ray.init(**kwargs)
        except Exception as e:   # a port that answers but is no Ray cluster, a version mismatch, ...
            line = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
            raise InputError(f"--ray {self.address}: cannot connect ({line})") from None
        self._started = True
        self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.name = f"Ray at {self.address} ({self.workers} CPUs)"

    def close(self) -> None:
        if self._started:
            import ray

            ray.shutdown()
            self._started = False

    @staticmethod
    def _payload(ref):
        from waferview.sweep.traces import open_trace

        trace = open_trace(ref)
        return {"meta": {"model": trace.model.to_dict(), "request_names": list(trace.request_names),
                         "skipped": [dict(s) for s in trace.skipped], "source": trace.source,
                         "synthetic": trace.synthetic},
                "arrays": {name: getattr(trace, name) for name in
                           ("prefill_ids", "decode_ids", "prefill_offsets", "decode_offsets")}}

    def run(self, chunks, traces, on_result) -> None:
        import ray

        task = ray.remote(num_cpus=1, max_retries=3)(_ray_chunk)
        order = sorted(range(len(chunks)), key=lambda i: (chunks[i][0], i))   # one trace after another
        left_per_trace: dict[int, int] = {}
        for t, _ in chunks:
            left_per_trace[t] = left_per_trace.get(t, 0) + 1
        stored: dict[int, object] = {}
        pending: dict = {}
        seen: set[int] = set()
        window = 2 * self.workers
        position = 0
        while position < len(order) or pending:
            while position < len(order) and len(pending) < window:
                cid = order[position]
                t, configs = chunks[cid]
                if t not in stored:
                    stored[t] = ray.put(self._payload(traces[t].ref))
                pending[task.remote(stored[t], configs)] = cid
                position += 1
            ready, _ = ray.wait(list(pending), num_returns=1)
            cid = pending.pop(ready[0])
            t, configs = chunks[cid]
            try:
                results = ray.get(ready[0])
            except Exception as e:   # the task failed for good (retries used up): its rows fail
                from waferview.sweep.runner import one_line

                print(f"waferview sweep: a Ray task failed: {one_line(e)}", file=sys.stderr)
                results = [(index, {"error": f"Ray task failed: {one_line(e)}"}) for index, _ in configs]
            for index, result in results:
                if index not in seen:
                    seen.add(index)
                    on_result(index, result)
            left_per_trace[t] -= 1
            if left_per_trace[t] == 0:
                del stored[t]    # its object can leave the store
