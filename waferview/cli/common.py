"""Options shared by several commands. Keep imports light: this module loads for --help."""

from __future__ import annotations

import argparse

SOURCE_HELP = ("a dataset-layout directory, one .json trace file, a waferview cache (.wvtrace), or "
               "hf:<org>/<model>[/<benchmark>[/<subject>]]; default: the shipped synthetic trace in assets/")


def add_source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", nargs="?", default=None, metavar="SOURCE", help=SOURCE_HELP)
    p.add_argument("--model", default=None,
                   help="qwen3, deepseek, llama4 or kimi (inferred from the path or the file when omitted)")
    p.add_argument("--strict", action="store_true",
                   help="stop at the first bad trace file (exit 2) instead of skipping it")
    p.add_argument("--no-cache", action="store_true", help="parse the JSON again even if a cache exists")


def add_json_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
