"""`waferview cache list | clear | path`: see and reclaim the trace caches of JSON sources."""

from __future__ import annotations

import time
from pathlib import Path

DESCRIPTION = """\
The trace caches: one compact file per JSON source (and model) read, under $WAFERVIEW_CACHE_DIR
(else $XDG_CACHE_HOME/waferview, else ~/.cache/waferview). A 16k-request source takes about 1.8 GB;
a cache is rebuilt from its JSON whenever it is needed again, so clearing loses nothing but time.

  list    each cache file: size, age, model, requests, the source it was built from
  clear   remove the cache files (asks first; --yes does not ask). Only waferview's own files go: names
          ending in .wvtrace that start with the cache magic, and unfinished writes (.wvtrace.*.tmp)
          older than an hour; anything else in the folder is left alone
  path    print the cache folder"""

ACTIONS = ("list", "clear", "path")
_STALE_TMP_S = 3600   # an unfinished write older than this belongs to a process that died


def add_arguments(p):
    p.add_argument("action", choices=ACTIONS, metavar="ACTION", help="list, clear or path")
    p.add_argument("--yes", action="store_true", help="clear: remove without asking")
    p.add_argument("--json", action="store_true", help="list: print one JSON object instead of a table")


def _folder() -> Path:
    import os

    from waferview.errors import InputError
    from waferview.trace.store import cache_dir

    folder = cache_dir()
    if folder.exists() and not folder.is_dir():
        origin = " (WAFERVIEW_CACHE_DIR)" if os.environ.get("WAFERVIEW_CACHE_DIR") else ""
        raise InputError(f"the cache folder {folder}{origin} is not a directory")
    return folder


def cache_files(folder: Path) -> list[dict]:
    """waferview's files in `folder`, newest first: [{path, bytes, age_s, kind, model, requests, source}]."""
    import stat

    from waferview.trace.cache import SUFFIX, CacheCorrupt, is_cache_file, read_header

    found = []
    if not folder.is_dir():
        return found
    now = time.time()
    for path in folder.iterdir():
        try:
            st = path.lstat()
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):      # symlinks, folders, FIFOs: not ours to touch
            continue
        entry = {"path": str(path), "bytes": st.st_size, "age_s": max(0.0, now - st.st_mtime),
                 "model": None, "requests": None, "source": None}
        if path.name.endswith(SUFFIX) and is_cache_file(path):
            entry["kind"] = "cache"
            try:
                header = read_header(path)
                model = header.get("model")
                entry["model"] = model.get("key") if isinstance(model, dict) else model
                entry["requests"] = len(header.get("request_names") or ())
                entry["source"] = header.get("source")
            except (CacheCorrupt, AttributeError, TypeError):
                entry["kind"] = "cache (unreadable header)"
        elif f"{SUFFIX}." in path.name and path.name.endswith(".tmp") and entry["age_s"] > _STALE_TMP_S:
            entry["kind"] = "unfinished write"
        else:
            continue
        found.append(entry)
    found.sort(key=lambda e: e["age_s"])
    return found


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def format_list(folder: Path, files: list[dict]) -> str:
    from waferview.report.summary import human_bytes

    total = sum(f["bytes"] for f in files)
    lines = [f"waferview cache: {folder} ({len(files)} file{'s' if len(files) != 1 else ''}, {human_bytes(total)})"]
    if not files:
        return lines[0]
    rows = [("size", "age", "model", "requests", "source", "file")]
    for f in files:
        source = f["source"] if f["kind"] == "cache" else f"({f['kind']})"
        rows.append((human_bytes(f["bytes"]), _age(f["age_s"]), f["model"] or "-",
                     "-" if f["requests"] is None else f"{f['requests']:,}", source or "-", Path(f["path"]).name))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        lines.append("  " + "  ".join(c.rjust(w) if i in (0, 1, 3) else c.ljust(w)
                                      for i, (c, w) in enumerate(zip(r, widths))).rstrip())
    return "\n".join(lines)


def _confirm(question: str, what: str) -> bool:
    import sys

    from waferview.errors import InputError

    if not sys.stdin or not sys.stdin.isatty():
        raise InputError(f"clear would remove {what}, and there is no terminal to ask on: pass --yes")
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    try:
        answer = sys.stdin.readline()
    except (OSError, ValueError):
        return False
    return answer.strip().lower() in ("y", "yes")


def run(args) -> int:
    import sys

    import orjson

    from waferview.report.summary import human_bytes

    folder = _folder()
    if args.action == "path":
        print(folder)
        return 0
    files = cache_files(folder)
    if args.action == "list":
        if args.json:
            print(orjson.dumps({"folder": str(folder), "files": files,
                                "total_bytes": sum(f["bytes"] for f in files)}).decode())
        else:
            print(format_list(folder, files))
        return 0
    # clear
    if not files:
        print(f"waferview cache: nothing to clear in {folder}", file=sys.stderr)
        return 0
    total = human_bytes(sum(f["bytes"] for f in files))
    what = f"{len(files)} waferview cache file{'s' if len(files) != 1 else ''} ({total}) from {folder}"
    if not args.yes and not _confirm(f"remove {what}?", what):
        print("waferview cache: nothing removed", file=sys.stderr)
        return 0
    removed, failed = 0, []
    for f in files:
        try:
            Path(f["path"]).unlink()
            removed += 1
        except FileNotFoundError:
            pass
        except OSError as e:
            failed.append(f"{Path(f['path']).name} ({e.strerror or e})")
    print(f"waferview cache: removed {removed} file{'s' if removed != 1 else ''} ({total}) from {folder}",
          file=sys.stderr)
    if failed:
        from waferview.errors import InputError

        raise InputError(f"could not remove {', '.join(failed)}")
    return 0
