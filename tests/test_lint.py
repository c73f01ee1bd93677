"""The code passes the repository's ruff configuration (pyproject.toml [tool.ruff])."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_check_finds_nothing():
    # --no-cache: a test leaves nothing in the checkout; ruff comes with the test extra, so a missing ruff fails
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "waferview", "tests"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"ruff check waferview tests:\n{proc.stdout}{proc.stderr}"
    assert "All checks passed" in proc.stdout
