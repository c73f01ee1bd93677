"""Convert a serving engine's dump that needs its own libraries into a form waferview reads with numpy alone.

    python -m waferview.convert sglang-recorder FILE.pt OUT.npz

Run it where torch is installed (next to the SGLang server, say); then `waferview insights OUT.npz
--model ...` anywhere. The .pt is read with torch.load(weights_only=True), so no code in it runs.
Bad input: one line on stderr, exit 2, no OUT left behind.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from waferview.errors import InputError

KINDS = ("sglang-recorder",)


def convert_sglang_recorder(source: Path, out: Path) -> dict:
    """Write OUT.npz from an SGLang expert distribution recorder .pt; returns the arrays written."""
    import numpy as np

    from waferview.trace.formats.common import BadRecord
    from waferview.trace.formats.sglang_recorder import dump_arrays, load_pt

    if not source.is_file():
        raise InputError(f"{source}: no such file")
    try:
        import torch  # noqa: F401
    except ImportError:
        raise InputError("python -m waferview.convert sglang-recorder reads the .pt with torch: run it where torch "
                         "is installed (pip install torch)") from None
    try:
        arrays = dump_arrays(load_pt(source, str(source)))
    except BadRecord as e:
        raise InputError(f"{source}: {e}") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=out.name + ".", suffix=".tmp.npz", dir=out.parent)
    os.close(fd)
    try:
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return arrays


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m waferview.convert", description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=KINDS, help="what FILE is: sglang-recorder (an expert distribution dump)")
    parser.add_argument("file", type=Path, metavar="FILE.pt")
    parser.add_argument("out", type=Path, metavar="OUT.npz")
    args = parser.parse_args(argv)
    try:
        if args.out.suffix.lower() != ".npz":
            raise InputError(f"{args.out}: the output is a .npz file")
        arrays = convert_sglang_recorder(args.file, args.out)
    except InputError as e:
        print(f"waferview convert: {e}", file=sys.stderr)
        return 2
    mode = str(arrays["mode"])
    passes = len(arrays.get("forward_pass_id", arrays.get("logical_count", [])))
    print(f"wrote {args.out} ({mode} dump, {passes} passes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
