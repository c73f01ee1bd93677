"""Where `synth` may write, and how it takes back what it wrote when it fails or is interrupted.

- Every folder name that goes into a dataset path (model folder, --benchmark, --subject) is one or
  more plain components: not empty, not "." or "..", no backslash or NUL, not hidden (the directory
  scan skips hidden folders, so their files would be invisible), not absolute. After the folders are
  made, the target must still resolve inside --out (a symlinked folder cannot lead outside).
- Folders are made with os.mkdir, so they get the ordinary mode (0777 less the umask); temporary
  files and folders are made with exclusive creation (O_EXCL / mkdir), never through an existing name.
- `Created` records every file and folder a run made and every file it replaced; `undo()` removes the
  new ones and restores the replaced ones. Folders that existed before are never removed.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import stat
from contextlib import contextmanager
from pathlib import Path

from waferview.errors import InputError


def check_component(text: str, what: str) -> list[str]:
    """`text` ("mmlu", "HuggingFaceH4/aime_2024") as validated folder names (InputError otherwise)."""
    if not isinstance(text, str) or not text:
        raise InputError(f"{what} {text!r}: expected a folder name")
    if text.startswith("/") or "\\" in text or "\0" in text:
        raise InputError(f"{what} {text!r}: expected a plain relative folder name (no leading /, no \\)")
    parts = text.split("/")
    for part in parts:
        if part == "":
            raise InputError(f"{what} {text!r}: expected plain folder names (an empty name: a doubled or "
                             "trailing /)")
        if part in (".", ".."):
            raise InputError(f"{what} {text!r}: expected plain folder names ({part!r} would leave the "
                             "dataset layout)")
        if part.startswith("."):
            raise InputError(f"{what} {text!r}: a folder name may not start with '.' (hidden folders are "
                             "skipped when a source is read)")
        if part != part.strip():
            raise InputError(f"{what} {text!r}: a folder name may not start or end with spaces")
    return parts


def holds_json(folder: Path) -> Path | None:
    """The first `*.json` file a SOURCE of `folder` would read (recursively, hidden files and folders
    skipped like the directory scan, symlinks not followed), or None."""
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.lower().endswith(".json") and not name.startswith("."):
                return Path(dirpath) / name
    return None


def inside(path: Path, root: Path) -> bool:
    """`path` resolves to `root` or below it (both resolved: symlinks cannot escape)."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    return real == real_root or real.startswith(os.path.join(real_root, ""))


def refuse_escape(target: Path, root: Path, what: str) -> None:
    """Refuse when the part of `target` (a path below `root`) that exists already resolves outside
    `root`: a symbolic link on the way would make us write elsewhere. The rest we make ourselves."""
    here = Path(target)
    while not os.path.lexists(here) and here != root and here.parent != here:
        here = here.parent
    if os.path.lexists(here) and not inside(here, root):
        raise InputError(f"{here}: leads outside {what} (a symbolic link?); refusing to write there")


class Created:
    """The files and folders one synth run made (in order), and the files it replaced."""

    def __init__(self):
        self.dirs: list[Path] = []
        self.files: list[Path] = []
        self.replaced: dict[Path, bytes] = {}

    def makedirs(self, path: Path) -> None:
        """mkdir -p with the ordinary mode, recording each folder made."""
        missing = []
        here = Path(path)
        while not here.exists():
            if here.is_symlink():
                raise InputError(f"{here}: a dangling symbolic link where a folder should go")
            missing.append(here)
            if here.parent == here:
                break
            here = here.parent
        if here.exists() and not here.is_dir():
            raise InputError(f"{here}: exists and is not a folder")
        for folder in reversed(missing):
            try:
                os.mkdir(folder)          # mode 0o777 & ~umask, like mkdir(1)
            except FileExistsError:
                if not folder.is_dir():
                    raise InputError(f"{folder}: exists and is not a folder") from None
                continue
            except OSError as e:
                raise InputError(f"{folder}: cannot make the folder ({e.strerror or e})") from None
            self.dirs.append(folder)

    def temp_dir(self, beside: Path) -> Path:
        """A new hidden folder next to `beside`, made exclusively (no existing name is reused). Left-overs
        of a run killed outright (kill -9: no cleanup ran) are removed first once they are an hour old."""
        _remove_stale_temp_dirs(beside)
        for _ in range(100):
            tmp = beside.parent / f".{beside.name}.{secrets.token_hex(6)}.tmp"
            try:
                os.mkdir(tmp)
            except FileExistsError:
                continue
            self.dirs.append(tmp)
            return tmp
        raise InputError(f"{beside.parent}: cannot make a temporary folder")

    def moved(self, old: Path, new: Path) -> None:
        """`old` (made by this run) is now `new`: record the new name."""
        for seq in (self.dirs, self.files):
            for i, p in enumerate(seq):
                if p == old:
                    seq[i] = new

    def forget(self, path: Path) -> None:
        for seq in (self.dirs, self.files):
            if path in seq:
                seq.remove(path)

    def write_file(self, path: Path, data: bytes) -> None:
        """Write `data` to `path` atomically: an exclusive temp file beside it, renamed over it. A file
        that was there is remembered, so undo() can put it back."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            st = None
        if st is not None:
            if not stat.S_ISREG(st.st_mode):
                raise InputError(f"{path}: exists and is not a regular file")
            if path not in self.replaced and path not in self.files:
                self.replaced[path] = path.read_bytes()
        tmp = path.with_name(f"{path.name}.{secrets.token_hex(6)}.tmp")
        with open(tmp, "xb") as f:
            self.files.append(tmp)
            f.write(data)
        os.replace(tmp, path)
        self.forget(tmp)
        if st is None:
            self.files.append(path)

    def undo(self) -> None:
        """Remove what this run made (newest first) and restore what it replaced; never raises."""
        for path in reversed(self.files):
            try:
                os.unlink(path)
            except OSError:
                pass
        for path, data in self.replaced.items():
            try:
                path.write_bytes(data)
            except OSError:
                pass
        for folder in reversed(self.dirs):
            shutil.rmtree(folder, ignore_errors=True)
        self.files, self.dirs, self.replaced = [], [], {}


_STALE_S = 3600


def _remove_stale_temp_dirs(beside: Path) -> None:
    import re
    import time

    pattern = re.compile(rf"^\.{re.escape(beside.name)}\.[0-9a-f]{{12}}\.tmp$")
    try:
        entries = list(os.scandir(beside.parent))
    except OSError:
        return
    for entry in entries:
        try:
            if pattern.match(entry.name) and entry.is_dir(follow_symlinks=False) and \
                    time.time() - entry.stat(follow_symlinks=False).st_mtime > _STALE_S:
                shutil.rmtree(entry.path, ignore_errors=True)
        except OSError:
            continue


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: unwinds like Ctrl-C so `finally` and cleanup run."""


@contextmanager
def sigterm_unwinds():
    """While the block runs, SIGTERM raises Terminated instead of killing the process outright."""
    def handler(signum, frame):
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:           # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def write_manifest(root: Path, run: dict, created: Created) -> Path:
    """Write ROOT/.waferview-synth.json describing this run (trace.manifest reads its presence as
    "synthetic"). A manifest already there (--force into a synthetic root) keeps its runs under
    "earlier_runs", so the file describes everything generated in the folder."""
    import orjson

    from waferview.trace.manifest import MANIFEST_NAME, read_manifest

    path = Path(root) / MANIFEST_NAME
    earlier = []
    old = read_manifest(root) if path.exists() else None
    if old:
        before = old.get("earlier_runs")
        earlier = [{k: v for k, v in old.items() if k != "earlier_runs"},
                   *(before if isinstance(before, list) else [])]
    body = {**run, "earlier_runs": earlier} if earlier else dict(run)
    try:
        created.write_file(path, orjson.dumps(body, option=orjson.OPT_INDENT_2) + b"\n")
    except OSError as e:
        raise InputError(f"{path}: cannot write the synthetic-dataset manifest ({e.strerror or e})") from None
    return path
