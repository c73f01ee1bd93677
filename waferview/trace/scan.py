"""Finding the trace files of a source and fingerprinting them for the cache.

A directory is searched recursively for `*.json` files; hidden folders and files (a leading
dot, e.g. `.cache/` that huggingface_hub writes next to downloads) and anything that is not
`.json` are ignored. Files are listed in sorted order of their path relative to the root
(as a POSIX string), which is also the request name. Folder names may be any Unicode.

Some entries are listed with a `problem` instead of being read (the source's skipped list, or with
--strict the error, names them): a `*.json` that is not a regular file (a FIFO, a device), a dangling
link or a symlink loop, a name that is not valid UTF-8 (shown with \\x escapes), a folder that cannot
be listed (one entry for the folder), a folder link pointing back up (a symlink loop). The walk is
iterative (no depth limit) and visits each real folder once.
"""

from __future__ import annotations

import hashlib
import os
import stat
import zlib
from dataclasses import dataclass

from waferview.errors import InputError
from waferview.files import NotReadable, file_kind, open_regular, os_reason

# Bump when the parser's output for the same bytes changes: old caches then read as stale.
PARSER_VERSION = 2   # 2: rows with a repeated expert id are bad rows
_EDGE = 64 << 10     # bytes hashed at each end of a file for its fingerprint


@dataclass(frozen=True)
class TraceFile:
    rel: str      # path relative to the source root, "/"-separated: the request name
    path: str     # absolute path to open
    size: int
    mtime_ns: int
    problem: str | None = None   # set when the entry is not read: why (it is then a skipped file)
    ctime_ns: int = 0
    inode: int = 0


def printable(name: str) -> str:
    """A file name for messages and reports: bytes that are not UTF-8 shown as \\xNN escapes."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return os.fsencode(name).decode("utf-8", "backslashreplace")


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _entry(rel: str, path: str) -> TraceFile:
    """One `*.json` directory entry: its stat, or the reason it cannot be read."""
    if not _utf8(rel):
        return TraceFile(printable(rel), path, -1, 0, "file name is not valid UTF-8 (not read)")
    try:
        st = os.stat(path)
    except OSError as e:
        reason = os_reason(e)
        if os.path.islink(path) and reason == "no such file or directory":
            reason = "dangling symlink (its target does not exist)"
        return TraceFile(rel, path, -1, 0, f"cannot read: {reason}")
    if not stat.S_ISREG(st.st_mode):
        return TraceFile(rel, path, st.st_size, st.st_mtime_ns, f"{file_kind(st.st_mode)}, not a regular file")
    return TraceFile(rel, path, st.st_size, st.st_mtime_ns, None, st.st_ctime_ns, st.st_ino)


def _is_ancestor(link: str, folder: str) -> bool:
    """Does the folder link `link`, found in `folder`, point at `folder` itself or a folder above it?"""
    target, here = os.path.realpath(link), os.path.realpath(folder)
    return here == target or here.startswith(target.rstrip(os.sep) + os.sep)


def scan_directory(root: str | os.PathLike) -> list[TraceFile]:
    """Every `*.json` under `root` (recursively, hidden entries skipped), sorted by relative path.

    One stat per file (following symlinks: Hub snapshots link into blobs/)."""
    root = os.path.abspath(root)
    found: list[TraceFile] = []
    try:
        st = os.stat(root)
    except OSError as e:
        raise InputError(f"{printable(root)}: cannot read the folder: {os_reason(e)}") from None
    seen = {(st.st_dev, st.st_ino)}   # real folders visited: links back up are not followed again
    stack = [("", root)]
    while stack:
        rel_dir, folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as e:
            if not rel_dir:
                raise InputError(f"{printable(root)}: cannot list the folder: {os_reason(e)}") from None
            found.append(TraceFile(printable(rel_dir) + "/", folder, -1, 0, f"cannot list folder: {os_reason(e)}"))
            continue
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            rel = f"{rel_dir}/{name}" if rel_dir else name
            try:
                is_dir = entry.is_dir()   # follows links
            except OSError:
                is_dir = False
            if is_dir:
                if not _utf8(name):
                    found.append(TraceFile(printable(rel) + "/", entry.path, -1, 0,
                                           "folder name is not valid UTF-8 (its files are not read)"))
                    continue
                try:
                    dst = entry.stat()
                except OSError as e:
                    found.append(TraceFile(rel + "/", entry.path, -1, 0, f"cannot read folder: {os_reason(e)}"))
                    continue
                if entry.is_symlink() and _is_ancestor(entry.path, folder):
                    found.append(TraceFile(rel + "/", entry.path, -1, 0,
                                           "symlink loop (the folder link points back to a folder above it)"))
                    continue
                key = (dst.st_dev, dst.st_ino)
                if key not in seen:   # a folder reached twice (two links to it) is read once
                    seen.add(key)
                    stack.append((rel, entry.path))
            elif name.lower().endswith(".json"):
                found.append(_entry(rel, entry.path))
    found.sort(key=lambda f: f.rel)
    return found


def single_file(path: str | os.PathLike) -> list[TraceFile]:
    """One trace file given as SOURCE: it must be a regular file."""
    path = os.path.abspath(path)
    try:
        fd = open_regular(path)
    except OSError as e:
        raise InputError(f"{printable(path)}: {os_reason(e)}") from None
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    # given by name, it is read whatever its name; the request is named with \x escapes if not UTF-8
    return [TraceFile(printable(os.path.basename(path)), path, st.st_size, st.st_mtime_ns, None, st.st_ctime_ns,
                      st.st_ino)]


def _content_digest(f: TraceFile) -> str:
    """Hash of the file's first and last 64 KiB (all of a smaller file), with its size, inode and
    ctime: a file rewritten with other ids is seen even with its size and mtime put back (writing
    moves the ctime, which no user can set). A file that cannot be read now is "unreadable": when it
    comes back its digest changes and the cache is rebuilt."""
    try:
        fd = open_regular(f.path)
    except OSError as e:
        return f"unreadable: {os_reason(e)}"
    try:
        st = os.fstat(fd)
        crc = zlib.crc32(os.pread(fd, _EDGE, 0))
        if st.st_size > _EDGE:
            crc = zlib.crc32(os.pread(fd, _EDGE, max(_EDGE, st.st_size - _EDGE)), crc)
    except (OSError, NotReadable) as e:
        return f"unreadable: {os_reason(e)}"
    finally:
        os.close(fd)
    # CRC-32 (not a cryptographic hash: 4x cheaper here, and this catches change, not forgery)
    return f"{st.st_size}:{st.st_ino}:{st.st_mtime_ns}:{st.st_ctime_ns}:{crc:08x}"


def fingerprint(files: list[TraceFile], model_key: str, cache_format: int) -> str:
    """What a cache was built from: format and parser versions, model, and every file's relative path
    with its content digest (or why it is not read). Any change to the set of files, to one file's
    bytes at either end, or any write to a file changes it."""
    h = hashlib.sha256(f"{cache_format}\0{PARSER_VERSION}\0{model_key}\0".encode())
    for f in files:
        digest = f.problem if f.problem is not None else _content_digest(f)
        h.update(f"{f.rel}\0{digest}\0".encode("utf-8", "backslashreplace"))
    return h.hexdigest()
