"""`python -m model`: train, gate and export; a problem prints one line and exits 1."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

DEFAULT_CONFIG = Path(__file__).with_name("config.yaml")


def _parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m model", description=__doc__)
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="training config YAML")
    parser.add_argument("--output", type=Path, required=True, help="artifact root directory")
    bring = parser.add_argument_group("import an already-trained model instead of training")
    bring.add_argument("--source", type=Path, help=".keras or .h5 file, or SavedModel directory")
    bring.add_argument("--name", help="model name in URLs (default: from the file name)")
    bring.add_argument("--version", type=int, default=1, help="version directory (default 1)")
    bring.add_argument("--eval", type=Path, help=".npz of arrays named by input, plus labels")
    bring.add_argument("--min-accuracy", type=float, default=0.0, help="the gate on --eval's accuracy")
    args = parser.parse_args(argv)
    if args.source is None and (args.name or args.eval):
        parser.error("--name and --eval apply to --source (an already-trained model)")
    if args.version < 1:
        parser.error(f"--version must be a positive integer, got {args.version}")
    if not 0.0 <= args.min_accuracy <= 1.0:
        parser.error(f"--min-accuracy must be between 0 and 1, got {args.min_accuracy}")
    return args


def _run(args: argparse.Namespace) -> tuple[Path, dict[str, float], bool]:
    if args.source is None:
        from model.config import load_config

        load_config(args.config)  # before TensorFlow is imported: a missing or wrong config is named at once
        from model.pipeline import run

        return run(args.config, args.output)
    from model.errors import PipelineError
    from model.source import ImportRequest, InvalidSource, checked

    request = ImportRequest(args.source, args.name, args.version, args.eval, args.min_accuracy)
    try:
        checked(request)  # before TensorFlow is imported: a wrong path is named at once
    except InvalidSource as error:
        raise PipelineError(str(error)) from None
    from model.importer import run_import

    return run_import(request, args.output)


def _describe(metrics: dict[str, float]) -> str:
    if not metrics:
        return "no evaluation: give EVAL=path.npz to run the gate"
    scores = f"accuracy {metrics['accuracy']:.3f}"
    return f"{scores}, log_loss {metrics['log_loss']:.3f}" if "log_loss" in metrics else scores


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from model.errors import PipelineError

    started = time.perf_counter()
    try:
        target, metrics, written = _run(args)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - started
    if written:
        print(f"exported {target} ({_describe(metrics)}) in {elapsed:.1f}s")
        _say_runtimes(target)
    else:
        inputs = "data, config, code, lock" if args.source is None else "model file, evaluation, code, lock"
        print(f"{target} is up to date: its inputs ({inputs}) are unchanged ({_describe(metrics)})")
    return 0


def _say_runtimes(target: Path) -> None:
    """Which runtimes the artifact gets, so nobody learns it at deploy time."""
    import json

    litert = json.loads((target / "metadata.json").read_text()).get("litert", {})
    if litert.get("available"):
        print("runtimes: TensorFlow and LiteRT (model.tflite); Lambda gets the zip")
    else:
        print(f"runtimes: TensorFlow only, no model.tflite ({litert.get('reason')}); Lambda gets the image")


if __name__ == "__main__":
    sys.exit(main())
