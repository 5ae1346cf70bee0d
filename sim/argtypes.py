"""Argument types shared by the orgsim subcommands: a bad value is a one-line argparse error."""

from __future__ import annotations

import argparse


def _number(text: str, kind):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a {'whole number' if kind is int else 'number'}") from None


def positive_int(text: str) -> int:
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not allowed; give 1 or more")
    return value


def positive_float(text: str) -> float:
    value = _number(text, float)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value} is not allowed; give a positive number")
    return value


def scale(text: str) -> float:
    value = _number(text, float)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{value} is not allowed; give a fraction in (0, 1]")
    return value


def add_workers_option(parser: argparse.ArgumentParser, what: str = "runs") -> None:
    """The one --workers option of every subcommand, default 1.

    One process by default, as in joblib and scikit-learn: a run's result never depends on the number of
    workers (every run has its own seed), so parallelism only saves time, and asking for it explicitly keeps a
    shared machine usable and memory predictable.
    """
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    parser.add_argument("--workers", type=positive_int, default=1, metavar="N",
                        help=f"local processes running the {what} in parallel, up to the CPU cores ({cores} here); "
                             "default 1, so that a shared machine stays usable (each run's result is the same "
                             "with any N)")


def seed(text: str) -> int:
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is not allowed; give a whole number 0 or more")
    return value
