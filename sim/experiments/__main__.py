"""``python -m sim.experiments sweep|sensitivity|compare ...``: the same subcommands as ``orgsim``."""

import argparse
import sys

from sim.errors import InputError
from sim.experiments.cli import register
from sim.experiments.cluster import dask_backend


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.experiments", description=__doc__)
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        with dask_backend(args):
            return args.handler(args)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
