"""The ``nkdefections-data`` command: check the manifest, show the table."""

from __future__ import annotations

from pathlib import Path

from nkdefections.config import DataConfig
from nkdefections.data.load import drivers_frame, load_data
from nkdefections.data.tables import update_manifest


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="nkdefections-data", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("manifest", help="check the data files against the manifest, or --update it")
    m.add_argument("--update", action="store_true", help="rewrite the sha256 of every file")
    m.add_argument("--dir", type=Path, default=None)
    sub.add_parser("show", help="print the assembled per-year table")
    args = parser.parse_args(argv)
    if args.cmd == "manifest":
        if args.update:
            for rel, sha in update_manifest(args.dir).items():
                print(f"{sha}  {rel}")
            return 0
        load_data(DataConfig(dir=args.dir))
        print("all data files match the manifest")
        return 0
    print(drivers_frame(load_data()).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
