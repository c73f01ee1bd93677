"""Opening files a user (or someone else) handed us: only regular files, never a blocking read, a size cap.

Every path waferview reads untrusted bytes from (trace files, caches, hardware files) goes through
`open_regular`: the file is opened non-blocking (so a FIFO cannot hang the open), checked with fstat on
the open descriptor (so a path swapped after a check is still caught) and refused unless it is a regular
file. `read_capped` then reads at most a cap, so /dev/zero or a huge file cannot eat memory. The reasons
are short phrases meant to follow "<file>: " in a one-line error.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat


class NotReadable(OSError):
    """The path is not a readable regular file (or is larger than allowed); str() is the reason."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


def file_kind(mode: int) -> str:
    """'a FIFO', 'a directory', ... for a stat mode that is not a regular file."""
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def os_reason(e: OSError) -> str:
    """A short reason for an OSError, naming symlink loops and over-long names as such."""
    if isinstance(e, NotReadable):
        return e.reason
    if e.errno == errno.ELOOP:
        return "symlink loop (too many levels of symbolic links)"
    if e.errno == errno.ENAMETOOLONG:
        return "path too long"
    if e.errno == errno.ENOENT:
        return "no such file or directory"
    if e.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return e.strerror or e.__class__.__name__


def open_regular(path: str | os.PathLike) -> int:
    """A read-only descriptor of `path` if it is a regular file (symlinks followed); NotReadable otherwise.

    O_NONBLOCK makes opening a FIFO return at once instead of waiting for a writer; it is cleared
    again for the regular file, where it changes nothing anyway."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = file_kind(st.st_mode)
            raise NotReadable(kind if kind == "not a regular file" else f"{kind}, not a regular file")
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_regular_file(path: str | os.PathLike):
    """open_regular as a binary file object (for readers that stream)."""
    return os.fdopen(open_regular(path), "rb")


def read_capped(path: str | os.PathLike, max_bytes: int, what: str = "file") -> bytes:
    """The whole content of a regular file of at most `max_bytes` bytes (NotReadable / OSError otherwise)."""
    fd = open_regular(path)
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > max_bytes:
            raise NotReadable(f"{_size(size)}, over the {_size(max_bytes)} a {what} may have")
        data = f.read(max_bytes + 1)   # the size may have changed since fstat
    if len(data) > max_bytes:
        raise NotReadable(f"over the {_size(max_bytes)} a {what} may have")
    return data


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"
