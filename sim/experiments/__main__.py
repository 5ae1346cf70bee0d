"""``python -m sim.experiments sweep|sensitivity|compare ...``: the same subcommands as ``orgsim``."""

import argparse
import sys

from sim.errors import InputError
from sim.experiments.cli import register


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.experiments", description=__doc__)
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
