"""A sweep's grid from a TOML file (tomllib): the sources and the axes, by the command line's names.

    sources = ["traces/qwen"]       # SOURCE arguments (or synth = true, synth_requests = 16384)
    paper = true                    # start from the paper's grid
    models = ["qwen3", "deepseek"]
    meshes = ["5x5", "8x3"]
    batches = [4096, 8192]
    strategies = ["Base", "Allo+Pred"]
    top_n = [13, 26, 52]            # any summary option, by its name (top_n or top-n)
    [set]                           # the same, as a table, if you prefer
    block_size = [50, 512]

A scalar is an axis of one value. Every axis is checked here, so a bad one is reported with the file.
"""

from __future__ import annotations

from waferview.errors import InputError

_SETTINGS = {"sources": list, "synth": bool, "synth_requests": int, "paper": bool}


def read_grid_file(path: str):
    import tomllib

    from waferview.sweep import grid
    from waferview.sweep.plan import SweepSpec

    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise InputError(f"{path}: grid file not found") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read the grid file ({e.strerror or e})") from None
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{path}: not valid TOML ({e})") from None
    spec = SweepSpec()
    axes = dict(data.pop("set", {}) or {})
    for key, value in data.items():
        name = key.replace("-", "_")
        if name in _SETTINGS:
            kind = _SETTINGS[name]
            if name == "sources" and isinstance(value, str):
                value = [value]
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise InputError(f"{path}: {key} = {value!r}: expected {kind.__name__}")
            setattr(spec, name, [str(v) for v in value] if name == "sources" else value)
        elif name in ("models", "model"):
            spec.models = value
        elif name in grid.source_dests() or f"--{key.replace('_', '-')}" in grid.source_flags():
            dest = name if name in grid.source_dests() else grid.summary_parser()._option_string_actions[
                f"--{key.replace('_', '-')}"].dest
            spec.read_options[dest] = ("true" if value else "false") if isinstance(value, bool) else str(value)
        else:
            axes[key] = value
    for key, value in axes.items():
        if isinstance(value, dict):
            raise InputError(f"{path}: {key}: expected a value or a list of values, not a table")
        try:
            grid.make_axis(key, value)
        except InputError as e:
            raise InputError(f"{path}: {e}") from None
    spec.axes = axes
    return spec
