"""Where per-layer records go: one file (summary --layers, replay --record) or one file per strategy in a
folder (compare --layers), written so that nothing half-written is ever left behind.

A file is streamed into a hidden temporary file beside it (`.NAME.<hex>.tmp`, made exclusively) and renamed
over NAME when the run ends; on any error, or an interrupt, the temporary file is removed. A folder's files
are written into a hidden temporary folder beside it and moved in at the end. The path is checked, and the
temporary made, before the run starts: a bad path is one line (InputError), before any work.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from waferview.errors import InputError
from waferview.report.layers import FORMATS, csv_bytes, header, jsonl_bytes, run_shape


def layer_format(path: str | Path, option: str) -> str:
    """".csv" or ".jsonl" from the file name (InputError otherwise)."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"{option} {path}: expected a file name ending in .csv or .jsonl")
    return suffix


def _folder_of(path: Path, option: str) -> Path:
    parent = path.parent
    if not parent.is_dir():
        raise InputError(f"{option} {path}: the folder {parent} does not exist")
    if path.is_dir():
        raise InputError(f"{option} {path}: is a folder; expected a file name")
    return parent


def _temp_file(beside: Path, option: str):
    for _ in range(100):
        tmp = beside.with_name(f".{beside.name}.{secrets.token_hex(6)}.tmp")
        try:
            return tmp, open(tmp, "xb")
        except FileExistsError:
            continue
        except OSError as e:
            raise InputError(f"{option} {beside}: cannot write there ({e.strerror or e})") from None
    raise InputError(f"{option} {beside}: cannot make a temporary file beside it")


class LayerFile:
    """The rows of one engine's run into `path`: write(chunk) is the engine's sink (Engine.record_layers).
    close() puts the file in place; discard() leaves nothing. Use as a context manager (an exception
    discards)."""

    def __init__(self, path: str | Path, option: str = "--layers", *, final: bool = True):
        self.path = Path(path)
        self.option = option
        self.kind = layer_format(self.path, option)
        _folder_of(self.path, option)
        # final=False: `path` is already in a temporary folder of ours (LayerFolder), no rename needed
        self.tmp, self.fh = _temp_file(self.path, option) if final else (self.path, open(self.path, "xb"))
        self.final = final
        self.shape = None
        self.rows = 0

    def bind(self, engine) -> "LayerFile":
        """Take the run's shape from `engine` (die and link counts, layer ids) and write the CSV header; once
        (engines replaying the same run have the same shape)."""
        if self.shape is None:
            self.shape = run_shape(engine)
            if self.kind == ".csv":
                self._write((",".join(header(self.shape)) + "\n").encode())
        return self

    def write(self, chunk) -> None:
        if len(chunk) == 0:
            return
        data = csv_bytes(chunk, self.shape) if self.kind == ".csv" else jsonl_bytes(chunk, self.shape)
        self._write(data)
        self.rows += len(chunk)

    def _write(self, data: bytes) -> None:
        try:
            self.fh.write(data)
        except OSError as e:
            raise InputError(f"{self.option} {self.path}: cannot write ({e.strerror or e})") from None

    def close(self) -> None:
        try:
            self.fh.close()
            if self.final:
                os.replace(self.tmp, self.path)
        except OSError as e:
            self.discard()
            raise InputError(f"{self.option} {self.path}: cannot write ({e.strerror or e})") from None

    def discard(self) -> None:
        try:
            self.fh.close()
        except OSError:
            pass
        try:
            os.unlink(self.tmp)
        except OSError:
            pass

    def __enter__(self) -> "LayerFile":
        return self

    def __exit__(self, kind, value, tb) -> None:
        if kind is None:
            self.close()
        else:
            self.discard()


def strategy_file_name(strategy: str, links: str, extension: str) -> str:
    """compare --layers: 'Allo+Pred' under fluid -> allo-pred.fluid.csv, 'base/lru' -> base-lru.fluid.csv."""
    slug = "".join(c if c.isalnum() else "-" for c in strategy.lower()).strip("-")
    while "--" in slug:
        slug = slug.replace("--", "-")
    return f"{slug}.{links}{extension}"


class LayerFolder:
    """compare --layers DIR: one LayerFile per (strategy, link model), in a temporary folder beside DIR until
    commit() moves them in (DIR is made when missing; files of the same names in it are replaced)."""

    def __init__(self, path: str | Path, extension: str, option: str = "--layers"):
        self.path = Path(path)
        self.option = option
        if extension not in FORMATS:
            raise InputError(f"{option}: expected the format csv or jsonl, not {extension!r}")
        self.extension = extension
        if self.path.exists() and not self.path.is_dir():
            raise InputError(f"{option} {self.path}: exists and is not a folder")
        parent = self.path.resolve().parent
        if not parent.is_dir():
            raise InputError(f"{option} {self.path}: the folder {parent} does not exist")
        self.staging = None
        for _ in range(100):
            tmp = parent / f".{self.path.name}.{secrets.token_hex(6)}.tmp"
            try:
                os.mkdir(tmp)
            except FileExistsError:
                continue
            except OSError as e:
                raise InputError(f"{option} {self.path}: cannot write there ({e.strerror or e})") from None
            self.staging = tmp
            break
        if self.staging is None:
            raise InputError(f"{option} {self.path}: cannot make a temporary folder beside it")
        self.names: list[str] = []

    def file_for(self, strategy: str, links: str) -> LayerFile:
        name = strategy_file_name(strategy, links, self.extension)
        self.names.append(name)
        return LayerFile(self.staging / name, self.option, final=False)

    def commit(self) -> list[Path]:
        """Move the files into DIR; returns their paths."""
        try:
            if not self.path.exists():
                os.rename(self.staging, self.path)
            else:
                for name in self.names:
                    os.replace(self.staging / name, self.path / name)
                os.rmdir(self.staging)
        except OSError as e:
            self.discard()
            raise InputError(f"{self.option} {self.path}: cannot write ({e.strerror or e})") from None
        return [self.path / name for name in self.names]

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
