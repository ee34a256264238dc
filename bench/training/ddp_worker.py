"""Rank 1…N-1 of a ``--devices N`` run, started by :func:`bench.training.distributed.distributed_launch`.

``python -m bench.training.ddp_worker CONFIG ERROR_FILE --batch-size B --accumulation A --eval-batch-size E``
builds the same model as rank 0, says it is ready, fits with the other ranks and
writes any error to ``ERROR_FILE`` as JSON for rank 0 to raise.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.config import RunConfig
from bench.preparation.datasets import prepare_dataset
from bench.training.collectives import destroy_process_group
from bench.training.distributed import WORKER_MODULE, ready_file
from bench.training.fitting import fit_classifier, prepare_run


def worker_main(argv: Sequence[str]) -> int:
    """Rank ``LOCAL_RANK`` of a run: train with the others; errors go to the error file as JSON."""
    parser = argparse.ArgumentParser(prog=WORKER_MODULE)
    parser.add_argument("config", type=Path)
    parser.add_argument("error", type=Path)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--accumulation", type=int, required=True)
    parser.add_argument("--eval-batch-size", type=int, required=True)
    args = parser.parse_args(argv)
    try:
        config = RunConfig.from_json(args.config.read_text(encoding="utf-8"))
        prepared = prepare_run(
            config, prepare_dataset(config), batch_size=args.batch_size, eval_batch_size=args.eval_batch_size
        )
        ready_file(args.error).touch()
        fit_classifier(prepared, args.accumulation)
    except KeyboardInterrupt:
        return 130
    except BaseException as error:  # noqa: BLE001 - every failure is reported to rank 0
        message = (str(error).strip().splitlines() or [""])[0]
        args.error.write_text(json.dumps({"type": type(error).__name__, "message": message}), encoding="utf-8")
        return 1
    finally:
        destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
