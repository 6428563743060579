"""`make package`: one Lambda zip per architecture in dist/, each with its sha256 beside it."""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

from serving.artifact import locate
from serving.errors import ArtifactError
from serving.tools.packaging import decision
from serving.tools.packaging.lambda_zip import PLATFORMS, OverLimit, Package, PackageError, build


def python_version(text: str) -> str:
    if not re.fullmatch(r"3\.\d{1,2}", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a Python version like 3.12")
    return text


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m serving.tools.packaging", description=__doc__)
    parser.add_argument("--model-root", type=Path, required=True, help="artifact root from `make model`")
    parser.add_argument("--model-name", default=None, help="model to package when the root holds several")
    parser.add_argument("--python-version", type=python_version, required=True, help="Lambda's Python")
    parser.add_argument("--arch", action="append", choices=sorted(PLATFORMS), required=True)
    parser.add_argument("--out", type=Path, default=Path("dist"))
    return parser.parse_args(argv)


def _describe(package: Package, python_version: str) -> str:
    return (
        f"{package.path}{' (up to date: same inputs)' if package.reused else ''}: "
        f"{package.zipped_bytes / 2**20:.1f} MiB zipped, "
        f"{package.unzipped_bytes / 2**20:.1f} MiB unzipped, python{python_version}, "
        f"bytecode {'yes' if package.bytecode else 'no'}, sha256 {package.sha256}"
    )


def _image_instead(args: argparse.Namespace, version_dir: Path, reason: str) -> None:
    decision.remove_zips(args.out, args.arch)
    decision.write(args.out, version_dir, "image", reason)
    print(f"no Lambda zip: {reason}. The function runs the model image instead (lambdaPackage: auto).")


def _package(args: argparse.Namespace) -> None:
    version_dir = locate(args.model_root, args.model_name)
    refusal = decision.litert_refusal(version_dir)
    if refusal:
        _image_instead(args, version_dir, refusal)
        return
    for arch in args.arch:
        try:
            with tempfile.TemporaryDirectory(prefix=f"lambda-{arch}-") as staging:
                package = build(version_dir, arch, args.python_version, args.out, Path(staging))
        except OverLimit as error:
            _image_instead(args, version_dir, str(error))
            return
        print(_describe(package, args.python_version))
    decision.write(args.out, version_dir, "zip")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        _package(args)
    except (PackageError, ArtifactError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
