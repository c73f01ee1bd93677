"""Provenance: what produced a JSON output, so a number taken into a notebook can be traced back.

`provenance(...)` is the one dict every `--json` output carries under the key "provenance":
  waferview_version   the package version
  git_commit          the checkout's commit when waferview runs from a git checkout (read from .git,
                      no subprocess), else null
  python              the interpreter version
  command_line        sys.argv as given
  synthetic           true when the routing was generated (see trace.manifest), false when recorded
  model               the model's dimensions (ModelSpec.to_dict), or a list when several were used
  hardware            the wafer as simulated (Hardware as a dict: mesh, rates, latencies, efficiencies,
                      reserve), or a list; null for commands that simulate nothing (insights)
  run_options         the options that shape the run beyond the hardware (placement, predictor, policy
                      knobs, profile / link model, ...): whatever the caller passes, as given

Core module: no numba, no textual; never raises for a missing or odd git checkout.
"""

from __future__ import annotations

import dataclasses
import platform
import re
import os
import sys
from pathlib import Path

import waferview

_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


def _checkout_root() -> Path | None:
    """The folder above the package when it is a source checkout (has pyproject.toml and .git)."""
    root = Path(waferview.__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file() and (root / ".git").exists():
        return root
    return None


def _git_dir(root: Path) -> Path | None:
    dot_git = root / ".git"
    if dot_git.is_dir():
        return dot_git
    # a worktree or submodule: ".git" is a file "gitdir: <path>"
    text = dot_git.read_text(encoding="utf-8", errors="replace").strip()
    if not text.startswith("gitdir:"):
        return None
    gitdir = Path(text[len("gitdir:"):].strip())
    return gitdir if gitdir.is_absolute() else (root / gitdir).resolve()


def _resolve_ref(gitdir: Path, ref: str) -> str | None:
    common = gitdir
    commondir = gitdir / "commondir"      # worktrees keep branches in the main repository
    if commondir.is_file():
        common = (gitdir / commondir.read_text(encoding="utf-8").strip()).resolve()
    for base in (gitdir, common):
        loose = base / ref
        if loose.is_file():
            sha = loose.read_text(encoding="utf-8").strip()
            return sha if _SHA.match(sha) else None
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] == ref and _SHA.match(parts[0]):
                return parts[0]
    return None


def git_commit() -> str | None:
    """The commit checked out where waferview is imported from, or None (not a checkout, unreadable)."""
    try:
        root = _checkout_root()
        if root is None:
            return None
        gitdir = _git_dir(root)
        if gitdir is None:
            return None
        head = (gitdir / "HEAD").read_text(encoding="utf-8").strip()
        if head.startswith("ref:"):
            return _resolve_ref(gitdir, head[len("ref:"):].strip())
        return head if _SHA.match(head) else None
    except (OSError, ValueError, UnicodeError):
        return None


def hardware_dict(hardware) -> dict:
    """The Hardware dataclass as plain JSON values, with the derived figures a reader needs."""
    out = dataclasses.asdict(hardware)
    out["mesh"] = hardware.shape
    out["dies"] = hardware.num_dies
    out["usable_hbm_bytes"] = hardware.usable_hbm_bytes
    return out


def _one_or_many(value, convert):
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [convert(v) for v in value]
    return convert(value)


def _printable(arg) -> str:
    """An argument as JSON can carry it: a file name that is not valid UTF-8 gets \\x escapes."""
    return os.fsencode(arg).decode("utf-8", "backslashreplace") if isinstance(arg, (str, bytes)) else str(arg)


def provenance(*, model=None, hardware=None, synthetic: bool | None = None, run_options: dict | None = None,
               argv: list[str] | None = None) -> dict:
    """The provenance dict (see the module docstring). `model` and `hardware` may be one or a list."""
    return {
        "waferview_version": waferview.__version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "command_line": [_printable(a) for a in (sys.argv if argv is None else argv)],
        "synthetic": None if synthetic is None else bool(synthetic),
        "model": _one_or_many(model, lambda m: m.to_dict()),
        "hardware": _one_or_many(hardware, hardware_dict),
        "run_options": dict(run_options or {}),
    }


def run_options_from_args(args, **extra) -> dict:
    """The simulation options of a parsed command line, as a plain dict (for run_options)."""
    keys = ("mesh", "batch", "seed", "placement", "predictor", "modes")
    out = {k: getattr(args, k) for k in keys if hasattr(args, k)}
    if hasattr(args, "profile"):   # every choice as resolved: the command line, else the profile, else defaults
        from waferview.cli.common import resolved_settings

        settings = resolved_settings(args)
        defaults = _option_defaults()
        out["profile"] = settings.pop("profile")
        out.update({k: settings.get(k, defaults.get(k)) for k in sorted(set(settings) | set(defaults))})
    out.update(extra)
    return out


def _option_defaults() -> dict:
    import dataclasses

    from waferview.policies.base import PolicyOptions

    fields = {f.name: f.default for f in dataclasses.fields(PolicyOptions)
              if f.name not in ("circuit_rules", "profile")}
    return {**fields, "links": "fluid", "circuit_off": ()}


def provenance_from_args(args, *, model=None, hardware=None, synthetic=None, run_options=None) -> dict:
    """provenance() for a parsed command line: its argv (main sets args.command_line) and options."""
    return provenance(model=model, hardware=hardware, synthetic=synthetic,
                      run_options=run_options_from_args(args) if run_options is None else run_options,
                      argv=getattr(args, "command_line", None))

