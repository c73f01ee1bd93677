"""The network side of hub.py: a fast reachability probe, finite timeouts, quiet retries.

huggingface_hub's shared HTTP client has no timeout, and its listing call retries a failed connection
five times with backoff (23 s of sleeping): an unreachable Hub took 23-24 s to fail, a black-holed one
never did. hub.fetch therefore asks once, with no retries, whether the endpoint answers at all, and
installs a client with finite timeouts for the calls that follow.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

PROBE_SECONDS = 3.0          # an unreachable Hub is given up on after this long (a whole run: under 5 s)
_CALL_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds of every later Hub call


def probe(url: str) -> str | None:
    """None when `url` answers at all (any HTTP status) within PROBE_SECONDS, else why not.

    One request, no retries; run in a daemon thread so a stuck DNS lookup (which no socket timeout
    covers) cannot hold the run either."""
    import threading

    import httpx2

    outcome: dict = {}

    def ask():
        try:
            httpx2.head(url, timeout=httpx2.Timeout(PROBE_SECONDS * 0.75), follow_redirects=False)
            outcome["ok"] = True
        except Exception as e:  # noqa: BLE001 - any failure means "not reachable now"
            outcome["error"] = first_line(e) or e.__class__.__name__

    thread = threading.Thread(target=ask, name="waferview-hub-probe", daemon=True)
    thread.start()
    thread.join(PROBE_SECONDS)
    if thread.is_alive():
        return f"no answer from {url.split('/api/')[0]} within {PROBE_SECONDS:g} s"
    return None if outcome.get("ok") else outcome.get("error", "no answer")


_timeouts_set = False


def finite_timeouts() -> None:
    """huggingface_hub's shared client waits forever by default: give every call a deadline."""
    global _timeouts_set
    if _timeouts_set:
        return
    import httpx2
    import huggingface_hub as hfh

    try:   # keep the library's own client (its request hooks), only with deadlines
        from huggingface_hub.utils._http import default_client_factory
    except ImportError:  # pragma: no cover - another huggingface_hub layout
        def default_client_factory():
            return httpx2.Client(follow_redirects=True)

    def factory():
        client = default_client_factory()
        client.timeout = httpx2.Timeout(_CALL_TIMEOUT[1], connect=_CALL_TIMEOUT[0])
        return client

    hfh.set_client_factory(factory)
    _timeouts_set = True


@contextmanager
def quiet_hub():
    """huggingface_hub logs a warning per retry; our own one-line error says what failed."""
    import huggingface_hub.hf_api  # noqa: F401 - its first import resets the "huggingface_hub" logger level
    logger = logging.getLogger("huggingface_hub")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else ""
