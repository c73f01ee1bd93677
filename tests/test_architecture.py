"""The house rules that keep waferview headless-first, checked in fresh interpreters."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import waferview

CORE_PACKAGES = ["waferview.trace", "waferview.synth", "waferview.wafer", "waferview.sim", "waferview.policies",
                 "waferview.sweep", "waferview.analysis", "waferview.report", "waferview.cli"]


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def _core_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(waferview.__path__, "waferview."):
        if not info.name.startswith("waferview.tui") and info.name != "waferview.__main__":
            names.append(info.name)
    return names


def test_core_modules_exist():
    # guards the next test against passing on an empty package list
    names = _core_modules()
    assert any(n.startswith("waferview.trace.") for n in names)
    assert "waferview.cli.main" in names


def test_core_never_imports_textual():
    names = _core_modules()
    loaded = _loaded_after("\n".join(f"import {n}" for n in names))
    assert "waferview.cli.main" in loaded
    assert not any(m == "textual" or m.startswith("textual.") for m in loaded)


def test_help_is_light():
    # `waferview --help` and every command's --help must not pay for numba or textual
    loaded = _loaded_after("from waferview.cli.main import build_parser\nbuild_parser()")
    assert "waferview.cli.cmd_summary" in loaded
    for heavy in ("textual", "numba", "huggingface_hub"):
        assert heavy not in loaded, heavy


def test_help_exits_zero_without_traceback():
    out = subprocess.run([sys.executable, "-m", "waferview", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for cmd in ("replay", "summary", "compare", "insights", "fetch", "synth", "bench", "cache"):
        assert cmd in out.stdout
