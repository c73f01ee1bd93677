"""Clocks, the machine description, and child processes (for peak memory and start times)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import waferview


def clock() -> float:
    return time.perf_counter()


def best_of(repeats: int, fn):
    """(smallest wall seconds over `repeats` calls of fn(), the last call's result)."""
    best, result = float("inf"), None
    for _ in range(max(1, repeats)):
        t = clock()
        result = fn()
        best = min(best, clock() - t)
    return best, result


def repo_root() -> Path:
    """The checkout this waferview was imported from (tests/ and assets/ live there)."""
    return Path(waferview.__file__).resolve().parent.parent


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _mem_total_gb() -> float | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 / 1024, 1)
    except (OSError, ValueError):
        pass
    return None


def machine() -> dict:
    """What the figures were measured on."""
    import numba
    import numpy
    import orjson

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count()
    load = load_average()
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "numba_threads": numba.config.NUMBA_NUM_THREADS,
        "memory_gb": _mem_total_gb(),
        "load_average_at_start": load,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "numba": numba.__version__,
        "numpy": numpy.__version__,
        "orjson": orjson.__version__,
        "waferview": waferview.__version__,
        "commit": git_commit(),
    }


def git_commit() -> str | None:
    """The checkout's commit (with "+dirty" when tracked files changed), or None outside a git checkout."""
    root = repo_root()
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (head + ("+dirty" if dirty else "")) or None


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        return None


def child_env(**extra: str) -> dict:
    """The environment for a child `python -m waferview...`: this checkout first on the path, no
    progress bars, plus `extra`."""
    env = dict(os.environ)
    root = str(repo_root())
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["WAFERVIEW_NO_PROGRESS"] = "1"
    env.update(extra)
    return env


def run_child(argv: list[str], env: dict, timeout: float = 3600) -> tuple[float, subprocess.CompletedProcess]:
    """Run `python argv...` to the end; (wall seconds, the completed process). Raises RuntimeError
    with the child's last stderr line when it fails."""
    t = clock()
    done = subprocess.run([sys.executable, *argv], env=env, capture_output=True, text=True, timeout=timeout)
    seconds = clock() - t
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"`{' '.join(argv)}` exited {done.returncode}: {tail}")
    return seconds, done


def status_kb(field: str) -> int | None:
    """A `kB` field of /proc/self/status (VmHWM, VmRSS, RssAnon, ...), or None off Linux."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None
