"""Sweep throughput of the batch runner: runs per minute with 1 and 2 workers, parallel efficiency,
and the wall time of the shipped Sobol example (experiments/sobol_behavioural.yaml).

    .venv/bin/python benchmarks/bench_sweep.py                 # everything (a few minutes)
    .venv/bin/python benchmarks/bench_sweep.py --skip-sobol    # throughput only

The throughput workload is the same list of runs for both worker counts (full-horizon runs of all
five trusts, distinct seeds), written to parquet as a real sweep would. The 2-worker pool is
started before timing (a sweep pays that once, about a second). Parallel efficiency is
(runs/min with 2 workers) / (2 x runs/min with 1 worker). Figures vary with the machine's load.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sim.experiments.batch import OutputSelection, RunSpec, run_batch
from sim.experiments.cli import run_sensitivity
from sim.experiments.designs import count_runs
from sim.experiments.schema import load_experiment
from sim.params import default_params

TRUSTS = ("SASH", "LTHT", "UHCW", "SATH", "BHRUT")
OUTPUTS = OutputSelection(final=("quality_final", "engagement_mean_final", "cqc_latest_score"))


def workload(runs: int, scale: float) -> list[RunSpec]:
    return [RunSpec(run_index=i, scenario=TRUSTS[i % len(TRUSTS)], params=default_params(), seed_index=i,
                    base_seed=2026, scale=scale) for i in range(runs)]


def runs_per_minute(specs: list[RunSpec], workers: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        run_batch(specs, Path(folder) / "out", OUTPUTS, workers=workers, progress=False)
        return len(specs) / (time.perf_counter() - started) * 60


def sobol_wall_time(workers: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        args = argparse.Namespace(experiment="sobol_behavioural", out=Path(folder) / "sobol", workers=workers,
                                  scheduler=None, max_runs=20_000, chunk_size=50, no_progress=True,
                                  resamples=100, conf_level=0.95)
        started = time.perf_counter()
        run_sensitivity(args)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=60, help="runs in the throughput workload (60)")
    parser.add_argument("--scale", type=float, default=0.1, help="staff scale of those runs (0.1)")
    parser.add_argument("--skip-sobol", action="store_true", help="do not time the Sobol example")
    args = parser.parse_args()

    specs = workload(args.runs, args.scale)
    run_batch(workload(4, args.scale), None, OUTPUTS, workers=2, progress=False)  # start the worker pool
    one = runs_per_minute(specs, workers=1)
    two = runs_per_minute(specs, workers=2)
    print(f"workload: {args.runs} full-horizon runs of the five trusts at scale {args.scale}")
    print(f"1 worker : {one:7.1f} runs/min")
    print(f"2 workers: {two:7.1f} runs/min")
    print(f"parallel efficiency: {two / (2 * one):.0%}")
    if not args.skip_sobol:
        runs = count_runs(load_experiment("sobol_behavioural"))
        print(f"sobol_behavioural ({runs} runs, 2 workers, incl. analysis and plots): {sobol_wall_time(2):.0f} s wall")


if __name__ == "__main__":
    main()
