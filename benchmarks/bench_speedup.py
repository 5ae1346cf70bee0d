"""Particles per second of this checkout against an earlier commit, in one run (issue #18's measure).

    .venv/bin/python benchmarks/bench_speedup.py [--baseline b15abf7] [--scales 0.1 1.0] [--rounds 3]

A calibration particle is the five trusts simulated with shared parameters (sim/calibration/simulation.py,
CalibrationModel: the run path calibration uses, summaries included). The baseline commit is checked out
into a temporary git worktree; both versions run in fresh processes with the same Python and packages,
alternately (``--rounds`` times each, three particles per round, the fastest of each round kept), so that
both see the same load. Prints the median seconds per particle and the ratio per scale, and the
agent-steps per second against Mesa's VirusOnNetwork at the same agent count (bench_model.py's
set-up). Quote the ratios; the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PARTICLE = """
import time
from sim.calibration.simulation import CalibrationModel
from sim.calibration.targets import load_targets, TRUST_NAMES
from sim.params import default_params
model = CalibrationModel(TRUST_NAMES, default_params(), load_targets().for_scale({scale}), 1, {scale})
model({{}})   # warm: imports, compiled kernels loaded from their cache
times = []
for _ in range(3):
    started = time.perf_counter()
    model({{}})
    times.append(time.perf_counter() - started)
print(min(times))
"""


def particle_seconds(checkout: Path, scale: float) -> float:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    out = subprocess.run([sys.executable, "-c", PARTICLE.format(scale=scale)], cwd=checkout, env=env,
                         capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"particle run failed in {checkout}:\n{out.stderr}")
    return float(out.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="b15abf7", help="commit to compare with (default: before issue #18)")
    parser.add_argument("--scales", type=float, nargs="+", default=[0.1, 1.0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        baseline = Path(tmp) / "baseline"
        subprocess.run(["git", "worktree", "add", "-q", "--detach", str(baseline), args.baseline], cwd=ROOT, check=True)
        try:
            for scale in args.scales:
                times = {"baseline": [], "this": []}
                for _ in range(args.rounds):
                    times["baseline"].append(particle_seconds(baseline, scale))
                    times["this"].append(particle_seconds(ROOT, scale))
                before, now = statistics.median(times["baseline"]), statistics.median(times["this"])
                print(f"scale {scale}: {args.baseline} {before:.3f} s/particle ({1 / before:.2f}/s), this checkout "
                      f"{now:.3f} s/particle ({1 / now:.2f}/s): {before / now:.2f}x", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(baseline)], cwd=ROOT, check=False)


if __name__ == "__main__":
    main()
