"""Calibration throughput: particles (each simulating all five trusts) per second with 1 and 2 workers.

    .venv/bin/python benchmarks/bench_calibration.py [--scale 0.25] [--population 40] [--generations 1]

Runs the real ABC-SMC (pyabc, shipped targets and priors) twice in one process, with 1 and then
2 local workers, in throw-away folders, and prints simulations per second and the ratio.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from sim.calibration.smc import CalibrationSetup, StoppingRules, calibrate


def measure(workers: int, scale: float, population: int, generations: int, folder: Path) -> dict:
    setup = CalibrationSetup(name=f"bench{workers}", scale=scale, population_size=population, seed=workers)
    started = time.perf_counter()
    posterior = calibrate(setup, StoppingRules(generations=generations), workers=workers,
                          results_root=folder / "results", posterior_dir=folder / "posterior")
    seconds = time.perf_counter() - started
    manifest = json.loads(posterior.with_name(posterior.stem + ".manifest.json").read_text())
    sims = manifest["total_simulations"]
    return {"workers": workers, "particles": sims, "trust_runs": sims * 5, "seconds": round(seconds, 1),
            "particles_per_second": round(sims / seconds, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.25)
    parser.add_argument("--population", type=int, default=40)
    parser.add_argument("--generations", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(w, args.scale, args.population, args.generations, Path(tmp)) for w in (1, 2)]
    for row in rows:
        print(f"workers={row['workers']}: {row['particles']} particles ({row['trust_runs']} trust runs) in "
              f"{row['seconds']} s = {row['particles_per_second']} particles/s")
    print(f"speed-up 2 vs 1 workers: {rows[1]['particles_per_second'] / rows[0]['particles_per_second']:.2f}x "
          f"(scale {args.scale}, population {args.population}, {args.generations} generation(s))")


if __name__ == "__main__":
    main()
