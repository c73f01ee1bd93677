"""`waferview fetch`: download trace files from the Hugging Face Hub dataset."""

from __future__ import annotations

DESCRIPTION = """\
Download trace files of one model (optionally one benchmark, one subject, the first N files in
sorted order) from the gated Hub dataset core12345/MoE_expert_selection_trace, at a pinned
revision. The token comes from HF_TOKEN or the stored login (`hf auth login`); accept the
dataset's conditions on its Hub page first. With HF_HUB_OFFLINE=1, or when the Hub cannot be
reached (given up on after 3 s), files already in the local Hub cache (and in --out DIR) are used;
with --out DIR, files found only in the Hub cache are copied into DIR. Prints the local folder,
which is a SOURCE for the other commands (or use hf:<org>/<model>/<benchmark>/<subject> directly).

examples:
  waferview fetch --model qwen3 --benchmark mmlu --subject abstract_algebra --limit 20
  waferview fetch --model deepseek --benchmark HuggingFaceH4/aime_2024 --out traces/
"""


# the keys of `fetch --json`, in order, as --help lists them
JSON_KEYS = {
    "path": "the local folder holding the files (a SOURCE for the other commands)",
    "source": "the same selection as an hf: SOURCE",
    "files": "how many trace files were selected",
    "offline": "true when the Hub was not used (offline mode, or unreachable: files already local)",
}


def add_arguments(p):
    from waferview.cli.common import whole_number

    p.add_argument("--model", required=True,
                   help="qwen3, deepseek, llama4, kimi, or the dataset folder (e.g. Qwen/Qwen3-235B-A22B-FP8)")
    p.add_argument("--benchmark", default=None,
                   help="mmlu, mmlu_ZH_CN, hellaswag, livecodebench, HuggingFaceH4/aime_2024, Chinese-SimpleQA")
    p.add_argument("--subject", default=None, help="a subject folder under the benchmark")
    p.add_argument("--limit", type=whole_number(1, 1 << 31, "a number of files"), default=None, metavar="N",
                   help="only the first N files, in sorted order")
    p.add_argument("--revision", default=None, help="dataset revision (default: the pinned commit)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="download into DIR (dataset layout) instead of the Hugging Face cache")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object instead of the path, with the keys " +
                        "; ".join(f"{key}: {meaning}" for key, meaning in JSON_KEYS.items()))


def run(args) -> int:
    from waferview.trace import hub

    sel = hub.select(args.model, args.benchmark, args.subject)
    result = hub.fetch(sel, revision=args.revision or hub.DEFAULT_REVISION, limit=args.limit, out=args.out)
    if args.json:
        import orjson

        values = {"path": str(result.local_dir), "source": str(sel), "files": len(result.files),
                  "offline": result.offline}
        print(orjson.dumps({key: values[key] for key in JSON_KEYS}).decode())
    else:
        print(result.local_dir)
    return 0
