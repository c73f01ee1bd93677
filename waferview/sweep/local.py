"""The local backend: a pool of spawned worker processes, one numba thread each.

spawn, not fork: a forked child dies once the parent has run a parallel=True numba kernel. Each worker
sets NUMBA_NUM_THREADS=1 before anything imports numba (this module imports nothing heavy at the top),
ignores Ctrl-C (the parent handles it and stops the pool), exits when its parent is gone, warms numba
once (under a file lock, so a cold cache is compiled by one worker while the others wait), then runs
chunks: it opens the trace by memory-mapping its .wvtrace and sends every row back through a queue as
soon as it is finished. When a worker dies (killed, out of memory) the pool is rebuilt and the rows
not received are run again; a configuration that was running when workers died twice is a failed row.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

_queue = None
WORKER_ENV = {"NUMBA_NUM_THREADS": "1", "WAFERVIEW_NO_PROGRESS": "1"}


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(0)


def init_worker(queue, parent: int, model_keys: tuple, lock_path: str) -> None:
    global _queue
    os.environ.update(WORKER_ENV)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _queue = queue
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    import fcntl

    from waferview.sweep.runner import warm_up

    try:
        os.makedirs(os.path.dirname(lock_path), exist_ok=True)
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            warm_up(model_keys)
    except OSError:
        warm_up(model_keys)


def pool_task(chunk_id: int, ref, configs: list) -> int:
    from waferview.sweep.runner import one_line, run_chunk
    from waferview.sweep.traces import open_trace

    try:
        trace = open_trace(ref)
    except Exception as e:
        for index, _ in configs:
            _queue.put((chunk_id, index, {"error": one_line(e)}))
        return chunk_id
    for index, result in run_chunk(trace, configs):
        _queue.put((chunk_id, index, result))
    return chunk_id


class LocalPool:
    name = "local"

    def __init__(self, workers: int, model_keys, lock_path: str):
        self.workers = workers
        self.model_keys = tuple(sorted(set(model_keys)))
        self.lock_path = lock_path

    def _executor(self):
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        ex = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx, initializer=init_worker,
                                 initargs=(queue, os.getpid(), self.model_keys, self.lock_path))
        return ex, queue

    def run(self, chunks, traces, on_result) -> None:
        """chunks: [(trace index, [(index, options)])]; on_result(index, result) per finished config."""
        import queue as queue_mod
        from concurrent.futures.process import BrokenProcessPool

        waiting = {i: dict(configs) for i, (_, configs) in enumerate(chunks)}   # chunk -> {index: options}
        trace_of = {i: t for i, (t, _) in enumerate(chunks)}
        deaths: dict[int, int] = {}
        while waiting:
            ex, q = self._executor()
            futures = {ex.submit(pool_task, cid, traces[trace_of[cid]].ref, list(cfg.items())): cid
                       for cid, cfg in waiting.items()}
            broken = False
            try:
                while waiting and not broken:
                    try:
                        cid, index, result = q.get(timeout=0.2)
                    except queue_mod.Empty:
                        broken = any(f.done() and f.exception() is not None for f in futures)
                        continue
                    if index in waiting.get(cid, {}):
                        del waiting[cid][index]
                        if not waiting[cid]:
                            del waiting[cid]
                        on_result(index, result)
                if broken:   # rows already sent are still in the queue
                    deadline = time.monotonic() + 1.0
                    while time.monotonic() < deadline:
                        try:
                            cid, index, result = q.get(timeout=0.1)
                        except queue_mod.Empty:
                            continue
                        if index in waiting.get(cid, {}):
                            del waiting[cid][index]
                            if not waiting[cid]:
                                del waiting[cid]
                            on_result(index, result)
                    reason = next((f.exception() for f in futures if f.done() and f.exception() is not None), None)
                    if reason is not None and not isinstance(reason, BrokenProcessPool):
                        raise reason
                    for cid in list(waiting):   # the first missing row of each chunk was running
                        index = min(waiting[cid])
                        deaths[index] = deaths.get(index, 0) + 1
                        if deaths[index] >= 2:
                            del waiting[cid][index]
                            if not waiting[cid]:
                                del waiting[cid]
                            on_result(index, {"error": "a worker process died while running it (twice)"})
                    print("waferview sweep: a worker process died; restarting the pool for the rows not "
                          "finished", file=sys.stderr)
            finally:
                _shutdown(ex)


def _shutdown(ex) -> None:
    """Stop the pool now: cancel what has not started, end the workers that are running."""
    processes = list(getattr(ex, "_processes", {}).values())
    ex.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        if p.is_alive():
            p.terminate()
    for p in processes:
        p.join(timeout=5)
