"""The Hugging Face Hub dataset of traces: choosing files, downloading them, and offline use.

Files are chosen by a path prefix `<org>/<model>[/<benchmark>[/<subject>]]` in the dataset at
a pinned revision: the remote folder is listed (one API call), its `*.json` files sorted,
the first `limit` kept, and each downloaded with hf_hub_download (already-cached files cost
nothing). The token comes from HF_TOKEN or the stored login (huggingface_hub reads them).

The listing of a commit is saved (in the waferview cache folder): when every chosen file is
already local, a later run makes no network call at all.

Offline (HF_HUB_OFFLINE=1) or when the Hub cannot be reached, the files already in the
local Hub cache (or in `out`; files only in the Hub cache are copied into `out`) are used; with none
there, a one-line error says so. Every Hub failure becomes one InputError line: no token / gate not
accepted, unknown revision, unknown benchmark or subject, network failure. An unknown model fails
before any network call.

An unreachable Hub fails fast: before the first network call of a run, one request with no retries
must get any answer within hub_net.PROBE_SECONDS (a thread bounds the DNS lookup too), else the run
goes offline at once; the calls after it use finite timeouts (huggingface_hub's default client has none).
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from waferview.errors import InputError
from waferview.files import read_capped
from waferview.models import MODELS, ModelSpec, get_model
from waferview.progress import progress, status
from waferview.trace import hub_net
from waferview.trace.hub_net import finite_timeouts, first_line as _first_line, quiet_hub as _quiet_hub

REPO_ID = "core12345/MoE_expert_selection_trace"
REPO_TYPE = "dataset"
DEFAULT_REVISION = "27febb7b2d24169560a9f6f83d38eb53f94916cf"
DATASET_URL = f"https://huggingface.co/datasets/{REPO_ID}"
_WORKERS = 8
_COMMIT = re.compile(r"[0-9a-f]{40}")
_MAX_LISTING_BYTES = 64 << 20


@dataclass(frozen=True)
class HubSelection:
    model: ModelSpec
    subpath: str = ""  # "<benchmark>[/<subject>]" under the model folder, "" for all of it

    @property
    def prefix(self) -> str:
        return f"{self.model.folder}/{self.subpath}" if self.subpath else self.model.folder

    def __str__(self) -> str:
        return f"hf:{self.prefix}"


@dataclass
class FetchResult:
    local_dir: Path                  # the folder holding the selection (read it as a directory source)
    files: list[str] = field(default_factory=list)  # repo paths, sorted
    offline: bool = False            # True when the Hub was not used


def _subpath(parts: list[str], what: str) -> str:
    """`<benchmark>[/<subject>]` joined, every part a plain folder name (never '..': a selection names
    folders inside the dataset, and files are written under --out by it)."""
    for part in parts:
        if part in (".", "..") or "\\" in part or "\0" in part or not part.strip():
            raise InputError(f"{what}: {part!r} is not a folder name of the dataset (no '.', '..' or backslashes)")
    return "/".join(parts)


def select(model: str, benchmark: str | None = None, subject: str | None = None) -> HubSelection:
    """A selection from command-line names; an unknown model fails here, before any network call."""
    if subject and not benchmark:
        raise InputError("--subject needs --benchmark")
    parts = [q for p in (benchmark, subject) if p for q in p.strip("/").split("/")]
    return HubSelection(get_model(model), _subpath(parts, "--benchmark/--subject"))


def parse_hf_source(source: str) -> HubSelection:
    """`hf:<org>/<model>[/<benchmark>[/<subject>]]` (a model key such as `hf:qwen3/mmlu` works too)."""
    rest = source[3:].strip("/") if source.startswith("hf:") else source.strip("/")
    parts = [p for p in rest.split("/") if p]
    if not parts:
        raise InputError(f"{source}: expected hf:<org>/<model>[/<benchmark>[/<subject>]]")
    if len(parts) >= 2:
        try:
            model = get_model(f"{parts[0]}/{parts[1]}")
        except InputError:
            model = None
        if model is not None:
            return HubSelection(model, _subpath(parts[2:], source))
    if parts[0].lower() in MODELS:
        return HubSelection(MODELS[parts[0].lower()], _subpath(parts[1:], source))
    folders = ", ".join(m.folder for m in MODELS.values())
    raise InputError(f"{source}: unknown model folder {'/'.join(parts[:2])!r}: expected one of {folders}")


def hub_cache_dir() -> Path:
    """huggingface_hub's cache, read from the environment now (its constants are read at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    from huggingface_hub import constants
    return Path(constants.HF_HUB_CACHE)


def is_offline() -> bool:
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    if value.strip().upper() in {"1", "ON", "YES", "TRUE"}:
        return True
    from huggingface_hub import constants
    return bool(constants.HF_HUB_OFFLINE)


def fetch(sel: HubSelection, *, revision: str = DEFAULT_REVISION, limit: int | None = None,
          out: str | os.PathLike | None = None) -> FetchResult:
    """Make the selection's files (the first `limit` in sorted order) local; return where they are."""
    if limit is not None and limit < 1:
        raise InputError(f"--limit must be at least 1, got {limit}")
    if is_offline():
        return _local(sel, revision, limit, out, why="offline mode (HF_HUB_OFFLINE=1)")
    remote = _read_listing(sel, revision)
    if remote is not None:
        chosen = remote[:limit] if limit else remote
        root = Path(out) if out is not None else _snapshot_dir(revision)
        if all((root / path).is_file() for path, _ in chosen):  # all here already: no network at all
            return FetchResult(root / sel.prefix, [path for path, _ in chosen])
    why = probe()
    if why is not None:
        message = f"cannot reach the Hub: {why}"
        result = _local(sel, revision, limit, out, why=message)
        _notice(f"{message}; using the {len(result.files)} files already in the local cache")
        return result
    finite_timeouts()
    if remote is None:
        try:
            with _quiet_hub(), status(f"listing {sel} on the Hub"):
                remote = _list_remote(sel, revision)
        except Exception as e:  # noqa: BLE001 - every failure becomes one line, or the local fallback
            kind, message = _classify(e, sel, revision)
            if kind in ("offline", "network"):
                result = _local(sel, revision, limit, out, why=message)
                _notice(f"{message}; using the {len(result.files)} files already in the local cache")
                return result
            raise InputError(message) from None
        if not remote:
            raise _nothing_under(sel, revision)
        _write_listing(sel, revision, remote)
        chosen = remote[:limit] if limit else remote
    try:
        with _quiet_hub():
            local_dir = _download(chosen, sel, revision, out)
    except Exception as e:  # noqa: BLE001
        raise InputError(_classify(e, sel, revision)[1]) from None
    return FetchResult(local_dir, [path for path, _ in chosen])


def probe() -> str | None:
    """None when the Hub answers at all within hub_net.PROBE_SECONDS, else why not (see hub_net)."""
    from huggingface_hub import constants

    return hub_net.probe(f"{constants.ENDPOINT.rstrip('/')}/api/datasets/{REPO_ID}")


def _notice(message: str) -> None:
    print(f"waferview: {message}", file=sys.stderr)


def _nothing_under(sel: HubSelection, revision: str) -> InputError:
    what = "benchmark or subject" if sel.subpath else "model folder"
    return InputError(f"no trace files under {sel.prefix} in {REPO_ID} at revision {revision[:12]} "
                      f"(unknown {what}?)")


def _list_remote(sel: HubSelection, revision: str) -> list[tuple[str, int]]:
    import huggingface_hub as hfh

    entries = hfh.HfApi().list_repo_tree(REPO_ID, path_in_repo=sel.prefix, recursive=True,
                                         revision=revision, repo_type=REPO_TYPE, token=None)
    files = [(e.path, e.size or 0) for e in entries
             if isinstance(e, hfh.RepoFile) and e.path.lower().endswith(".json")]
    return sorted(files)


def _download(chosen: list[tuple[str, int]], sel: HubSelection, revision: str,
              out: str | os.PathLike | None) -> Path:
    import huggingface_hub as hfh
    from huggingface_hub.utils import disable_progress_bars

    total = sum(size for _, size in chosen)
    cache_dir = None if out is not None else hub_cache_dir()

    def one(path: str) -> str:
        return hfh.hf_hub_download(REPO_ID, path, repo_type=REPO_TYPE, revision=revision,
                                   cache_dir=cache_dir, local_dir=out, token=None)

    local_paths = []
    with disable_progress_bars(), progress(total, f"fetching {len(chosen)} files", unit="B") as bar, \
            ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        for (path, size), local in zip(chosen, pool.map(one, [p for p, _ in chosen])):
            local_paths.append(local)
            bar.update(size)
    # the local root is the returned path minus the path in the repo
    first_path, first_local = chosen[0][0], local_paths[0]
    root = Path(first_local[: len(first_local) - len(first_path)])
    return root / sel.prefix


def _snapshot_dir(revision: str) -> Path:
    """Where huggingface_hub keeps the files of a commit (its documented cache layout)."""
    return hub_cache_dir() / f"datasets--{REPO_ID.replace('/', '--')}" / "snapshots" / revision


def _listing_path(sel: HubSelection, revision: str) -> Path:
    from waferview.trace.store import cache_dir

    digest = hashlib.sha256(f"{REPO_ID}\0{revision}\0{sel.prefix}".encode()).hexdigest()[:24]
    return cache_dir() / "hub-listings" / f"{digest}.json"


def _read_listing(sel: HubSelection, revision: str) -> list[tuple[str, int]] | None:
    """The remote listing saved by an earlier run; only for a commit (a branch may move)."""
    if not _COMMIT.fullmatch(revision):
        return None
    try:
        data = orjson.loads(read_capped(_listing_path(sel, revision), _MAX_LISTING_BYTES, "saved listing"))
        if data["repo"] != REPO_ID or data["revision"] != revision or data["prefix"] != sel.prefix:
            return None
        files = [(str(path), int(size)) for path, size in data["files"]]
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    # only paths inside the selection, never out of it (a planted listing cannot point elsewhere)
    if not all(path.startswith(sel.prefix + "/") and ".." not in path.split("/") for path, _ in files):
        return None
    return files


def _write_listing(sel: HubSelection, revision: str, files: list[tuple[str, int]]) -> None:
    if not _COMMIT.fullmatch(revision):
        return
    path = _listing_path(sel, revision)
    try:
        path.parent.parent.mkdir(parents=True, exist_ok=True, mode=0o755)   # the cache folder
        path.parent.mkdir(exist_ok=True, mode=0o755)
        _write_new(path, orjson.dumps({"repo": REPO_ID, "revision": revision, "prefix": sel.prefix,
                                       "files": files}))
    except OSError:
        pass  # only a shortcut for next time


def _write_new(path: Path, data: bytes) -> None:
    """Write `path` through a temporary file made with exclusive creation (never a predictable name a
    symlink could be planted at), then renamed."""
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _listed(root: Path, sel: HubSelection) -> list[str]:
    """Repo paths of the `*.json` files under root/<prefix> (hidden entries left out), sorted."""
    base = root / sel.prefix
    if not base.is_dir():
        return []
    return sorted(p.relative_to(root).as_posix() for p in base.rglob("*.json")
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts))


def _local(sel: HubSelection, revision: str, limit: int | None, out, why: str) -> FetchResult:
    """The selection's files already on disk: in `out` and in the Hub cache's snapshot (those only in
    the Hub cache are copied into `out`), or in the Hub cache's snapshot alone."""
    snapshot = _cached_snapshot(revision)
    if out is None and snapshot is None:
        raise InputError(f"{why}, and {sel.prefix} at revision {revision[:12]} is not in the local "
                         f"Hub cache ({hub_cache_dir()})")
    root = Path(out) if out is not None else snapshot
    in_root = _listed(root, sel)
    in_cache = _listed(snapshot, sel) if out is not None and snapshot is not None else []
    files = sorted(set(in_root) | set(in_cache))
    if not files:
        where = f"in {root} or the local Hub cache" if out is not None else (f"in the local Hub cache "
                                                                             f"({hub_cache_dir()})")
        raise InputError(f"{why}, and no trace files under {sel.prefix} at revision {revision[:12]} are {where}")
    if limit:
        files = files[:limit]
    for path in files:
        if out is not None and not (root / path).is_file():
            _copy_from_cache(snapshot / path, root / path)
    return FetchResult(root / sel.prefix, files, offline=True)


def _copy_from_cache(source: Path, target: Path) -> None:
    from waferview.trace.parse import MAX_TRACE_FILE_BYTES

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_new(target, read_capped(source, MAX_TRACE_FILE_BYTES, "trace file"))
    except OSError as e:
        raise InputError(f"cannot copy {source} from the Hub cache to {target}: {e.strerror or e}") from None


def _cached_snapshot(revision: str) -> Path | None:
    """The local snapshot folder of `revision` (huggingface_hub's own lookup, no network)."""
    import huggingface_hub as hfh
    from huggingface_hub.errors import IncompleteSnapshotError, LocalEntryNotFoundError

    try:
        return Path(hfh.snapshot_download(REPO_ID, repo_type=REPO_TYPE, revision=revision,
                                          cache_dir=hub_cache_dir(), local_files_only=True))
    except IncompleteSnapshotError as e:  # some files missing: use the ones that are there
        return Path(e.snapshot_path)
    except LocalEntryNotFoundError:
        return None


def _classify(e: Exception, sel: HubSelection, revision: str) -> tuple[str, str]:
    """(kind, one-line message) for a failure of a Hub call."""
    import httpx2
    from huggingface_hub import get_token
    from huggingface_hub.errors import (GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError,
                                        OfflineModeIsEnabled, RemoteEntryNotFoundError,
                                        RepositoryNotFoundError, RevisionNotFoundError)

    login = "set HF_TOKEN or run `hf auth login`"
    if isinstance(e, GatedRepoError):
        if get_token() is None:
            return "auth", f"{REPO_ID} is a gated dataset and no Hugging Face token was found: {login}"
        return "auth", (f"your token has no access to the gated dataset {REPO_ID}: accept its conditions "
                        f"at {DATASET_URL} with the account of the token")
    if isinstance(e, RevisionNotFoundError):
        return "revision", f"revision {revision!r} not found in {REPO_ID}"
    if isinstance(e, RemoteEntryNotFoundError):
        return "missing", str(_nothing_under(sel, revision))
    if isinstance(e, (RepositoryNotFoundError, HfHubHTTPError)):
        status = getattr(getattr(e, "response", None), "status_code", None)
        if isinstance(e, RepositoryNotFoundError) or status in (401, 403):
            if get_token() is None:
                return "auth", f"no Hugging Face token found ({REPO_ID} is gated): {login}"
            return "auth", (f"the Hub refused your token for {REPO_ID} (HTTP {status}): check the token and "
                            f"accept the dataset's conditions at {DATASET_URL}")
        if status == 404:
            return "missing", str(_nothing_under(sel, revision))
        return "http", f"the Hub answered HTTP {status} for {sel.prefix}: {_first_line(e)}"
    if isinstance(e, OfflineModeIsEnabled):
        return "offline", "offline mode (HF_HUB_OFFLINE=1)"
    if isinstance(e, LocalEntryNotFoundError):
        return "offline", f"files not in the local Hub cache and the Hub is not reachable ({_first_line(e)})"
    if isinstance(e, (httpx2.TransportError, ConnectionError, TimeoutError, OSError)):
        return "network", f"cannot reach the Hub: {_first_line(e) or e.__class__.__name__}"
    raise e
