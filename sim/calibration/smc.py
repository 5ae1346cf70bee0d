"""ABC-SMC calibration with pyabc: every particle simulates all calibrated trusts.

Distance: pyabc's AdaptivePNormDistance (L1), each statistic divided by its root-mean-square
deviation from the observation in the last population (pyabc.distance.rmsd; robust for discrete
statistics such as ratings and ranks, whose median absolute deviation is often zero), times the
target's weight from calibration/targets.yaml. Its scale weights are logged by generation in
results/calibration/<name>/scale_weights.json, from which a resume starts (sim/calibration/distance.py).

Parallelism: the calibration's own sampler on ``workers`` local processes (sim/calibration/sampler.py: seeded
jobs, saved as they end, so that a generation killed midway resumes), or pyabc's DaskDistributedSampler on the
cluster whose scheduler address is given.

Storage: pyabc's sqlite history in results/calibration/<name>/abc.db, written at the end of every
generation, so a killed calibration keeps its finished generations; ``resume=True`` continues it.

Wall time: pyabc checks its limit only between generations, so ``_run_abc`` runs the loop itself: the local
sampler stops at ``--max-minutes`` (its finished jobs saved); with Dask no generation starts that is predicted to
end after it.

Convergence: after every generation the measures of sim/calibration/convergence.py (epsilon change,
posterior shift, ESS, ...) are computed from the history, printed, and written to
results/calibration/<name>/generations.csv; with ``--converge TOL`` sampling stops once they meet
the rule. A calibration that ended (by any rule) is marked ``finished`` in its setup.json.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sim.errors import InputError
from sim.params import default_params

from .convergence import ConvergenceRule, add_noise_floors, generation_records, progress_line, write_generations
from .priors import DEFAULT_PRIORS, PriorSet, load_priors
from .provenance import file_sha256, provenance, write_json
from .simulation import CalibrationModel
from .targets import DEFAULT_TARGETS, FAMILIES, REPO_ROOT, TRUST_NAMES, TargetSet, load_targets

RESULTS_ROOT = REPO_ROOT / "results" / "calibration"
POSTERIOR_DIR = REPO_ROOT / "calibration"
SCHEDULER_TIMEOUT = "5s"
SCALE_WEIGHTS_FILE = "scale_weights.json"   # the distance's scale weights by generation: a resume starts from them
DEFAULT_KERNEL_SCALING = 3.0
PROGRESS_PREFIXES = ("t:", "Accepted:", "Stop:", "Calibration sample", "Parallelize", "Start <", "Done <")


@dataclass
class CalibrationSetup:
    """What defines a calibration (fixed once it has started; a resume reuses it)."""
    name: str
    targets_path: str = str(DEFAULT_TARGETS)
    priors_path: str = str(DEFAULT_PRIORS)
    leave_out: str | None = None
    scale: float = 0.1
    population_size: int = 200
    replicates: int = 1             # runs per trust per particle; statistics are their mean
    seed: int = 20150701
    end: str | None = None          # ISO date to stop every run early (tests only)
    kernel_scaling: float = DEFAULT_KERNEL_SCALING  # each parameter's kernel variance, x Silverman's (transition.py)
    kernel_scaling_changes: list[dict] = field(default_factory=list)   # set on a resume: from which generation, to what
    trusts: list[str] = field(default_factory=list)
    targets_sha256: str = ""
    priors_sha256: str = ""
    fixed_params: dict[str, float] = field(default_factory=dict)
    fit_families: list[str] = field(default_factory=list)   # fit only these families of targets (--fit); [] = all


@dataclass
class StoppingRules:
    """When to stop sampling; any rule that is met stops the calibration."""
    budget: int | None = None               # total model evaluations (particles, each all trusts)
    generations: int | None = None          # generations in this invocation
    max_walltime_minutes: float | None = None
    min_epsilon: float = 0.0
    min_acceptance_rate: float = 0.0
    converge: float | None = None           # stop when epsilon's relative change is below this and ...
    posterior_tol: float = 0.1              # ... the posterior shift below this and ...
    min_ess: float | None = None            # ... ESS at least this (default: half the population)
    noise_particles: int = 0                # > 0: after each generation re-run its best particles on fresh seeds;
    noise_seeds: int = 6                    # epsilon inside their distances also ends its fall (noise.py)

    def convergence_rule(self, population_size: int) -> ConvergenceRule | None:
        if self.converge is None:
            return None
        return ConvergenceRule(self.converge, self.posterior_tol,
                               self.min_ess if self.min_ess is not None else population_size / 2,
                               noise_floor=self.noise_particles > 0)


def stored_setup(saved: dict) -> CalibrationSetup:
    """The setup a calibration's setup.json records (``saved``), for a resume, export, progress or noise record.

    A parameter added to the model after the calibration started is not among its fixed parameters; it held its
    default then, since a new parameter's default is the constant it replaced (docs/calibration.md, 'Parameters
    added while r3 runs'), so it keeps that default. Stored values are never changed."""
    setup = CalibrationSetup(**saved["setup"])
    setup.fixed_params = {**default_params(), **setup.fixed_params}
    return setup


def calibrated_trusts(leave_out: str | None) -> list[str]:
    if leave_out is None:
        return list(TRUST_NAMES)
    if leave_out not in TRUST_NAMES:
        raise InputError(f"--leave-out: unknown trust '{leave_out}'; allowed: {', '.join(TRUST_NAMES)} (or all)")
    return [t for t in TRUST_NAMES if t != leave_out]


def chosen_trusts(trusts, leave_out: str | None) -> list[str]:
    """The trusts to calibrate: ``trusts`` (default all five) without ``leave_out``."""
    remaining = calibrated_trusts(leave_out)
    if not trusts:
        return remaining
    unknown = [t for t in trusts if t not in TRUST_NAMES]
    if unknown:
        raise InputError(f"--trusts: unknown trust(s) {', '.join(unknown)}; allowed: {', '.join(TRUST_NAMES)}")
    return [t for t in remaining if t in set(trusts)]


def run_directory(name: str, results_root: Path = RESULTS_ROOT) -> Path:
    if not name or any(c in name for c in "/\\ ") or name.startswith("."):
        raise InputError(f"--name: '{name}' is not a usable name (letters, digits, '-', '_')")
    return Path(results_root) / name


def portable_path(path: str) -> str:
    """A setup's input path as stored: relative to the repository when inside it, so that a calibration's
    history (calibration/history/) resumes in another clone."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(REPO_ROOT)) if resolved.is_relative_to(REPO_ROOT) else str(resolved)


def input_path(path: str) -> Path:
    """A stored input path made usable: a relative one is relative to the repository."""
    return Path(path) if Path(path).is_absolute() else REPO_ROOT / path


def _load_inputs(setup: CalibrationSetup) -> tuple[TargetSet, PriorSet]:
    targets = load_targets(input_path(setup.targets_path)).for_scale(setup.scale).fitted()   # no survey targets below full scale
    targets = targets.in_families(setup.fit_families)
    priors = load_priors(input_path(setup.priors_path)).for_trusts(setup.trusts)
    return targets, priors


def new_setup(setup: CalibrationSetup) -> CalibrationSetup:
    """Complete a fresh setup: trusts, input file hashes, the fixed parameter values."""
    if setup.scale <= 0 or setup.scale > 1:
        raise InputError(f"--scale: {setup.scale} is not allowed; give a fraction in (0, 1]")
    if setup.population_size < 10:
        raise InputError(f"--population: {setup.population_size} is too small; give at least 10")
    if setup.replicates < 1:
        raise InputError(f"--replicates: {setup.replicates} is not allowed; give a whole number of runs >= 1")
    setup.trusts = chosen_trusts(setup.trusts, setup.leave_out)
    setup.targets_path, setup.priors_path = portable_path(setup.targets_path), portable_path(setup.priors_path)
    setup.targets_sha256 = file_sha256(input_path(setup.targets_path)) if input_path(setup.targets_path).is_file() else ""
    setup.priors_sha256 = file_sha256(input_path(setup.priors_path)) if input_path(setup.priors_path).is_file() else ""
    setup.fixed_params = default_params()
    unknown = sorted(set(setup.fit_families) - set(FAMILIES))
    if unknown:
        raise InputError(f"--fit: unknown famil{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)}; "
                         f"allowed: {', '.join(FAMILIES)}")
    targets, _ = _load_inputs(setup)  # validate before anything is written
    if not targets.for_trusts(setup.trusts):
        raise InputError(f"--fit {','.join(setup.fit_families)}: no fitted target of these families at scale "
                         f"{setup.scale} for {', '.join(setup.trusts)}")
    return setup


def _check_unchanged(setup: CalibrationSetup, run_dir: Path) -> None:
    for label, path, sha in (("targets", setup.targets_path, setup.targets_sha256),
                             ("priors", setup.priors_path, setup.priors_sha256)):
        if not input_path(path).is_file() or file_sha256(input_path(path)) != sha:
            raise InputError(f"{run_dir}/setup.json: the {label} file {path} changed since this calibration "
                             "started; a resumed calibration must use the same inputs (start a new --name)")


def _make_sampler(workers: int, scheduler: str | None, run_dir: Path, seed: int):
    """On a cluster pyabc's DaskDistributedSampler; locally the calibration's own (sim/calibration/sampler.py):
    seeded jobs saved as they end, so that a killed generation resumes and any number of workers gives the same
    populations."""
    import pyabc

    from .sampler import JOB_DIR, ResumableSampler

    if scheduler:
        from distributed import Client

        try:
            client = Client(scheduler, timeout=SCHEDULER_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as exc:
            raise InputError(f"--scheduler: cannot reach the Dask scheduler at '{scheduler}' "
                             f"({type(exc).__name__}: {exc})") from None
        sampler = pyabc.sampler.DaskDistributedSampler(dask_client=client)
    else:
        if workers < 1:
            raise InputError(f"--workers: {workers} is not allowed; give 1 or more")
        return ResumableSampler(workers, run_dir / JOB_DIR, seed), None
    # pyabc's own bar of accepted particles within a Dask generation: a late generation can take an hour
    sampler.show_progress = True
    return sampler, client


class _ProgressFilter(logging.Filter):
    """pyabc's progress lines and every warning (one, "prior density zero", named why sampling stalled)."""
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or record.getMessage().startswith(PROGRESS_PREFIXES)


def show_progress() -> None:
    """Keep pyabc's own per-generation log lines (epsilon, acceptance, ESS) and its warnings; drop the rest."""
    logger = logging.getLogger("ABC")
    logger.setLevel(logging.INFO)
    if not logger.handlers:
        logger.addHandler(logging.StreamHandler(sys.stderr))
    for handler in logger.handlers:
        if not any(isinstance(f, _ProgressFilter) for f in handler.filters):
            handler.addFilter(_ProgressFilter())
            handler.setFormatter(logging.Formatter("calibrate: %(message)s"))


def _build_abc(setup: CalibrationSetup, sampler, run_dir: Path):
    import pyabc

    from .distance import ResumableDistance
    from .transition import DefensiveTransition

    targets, priors = _load_inputs(setup)
    end = dt.date.fromisoformat(setup.end) if setup.end else None
    model = CalibrationModel(setup.trusts, setup.fixed_params, targets, setup.seed, setup.scale, end,
                             setup.replicates, components=True)   # for re-scoring over fewer trusts (recycle.py)
    distance = ResumableDistance(targets.weights(setup.trusts), run_dir / SCALE_WEIGHTS_FILE)
    transition = DefensiveTransition(priors, scaling=kernel_scaling_at(setup, 0))  # each generation's: _run_abc
    abc = pyabc.ABCSMC(model, priors.to_pyabc(), distance, population_size=setup.population_size,
                       sampler=sampler, transitions=transition)
    return abc, targets, priors, model.scenarios


def _check_one_particle(abc, priors: PriorSet) -> None:
    """Simulate the prior's centre once in this process, so that a targets file that does not match the
    model's summaries fails here with its message, not as a dead worker process."""
    centre = {p.name: (p.low * p.high) ** 0.5 if p.log else (p.low + p.high) / 2 for p in priors.priors}
    abc.models[0].sample(centre)


def generation_seconds(history) -> list[float]:
    """Wall time of every finished generation, in order."""
    populations = history.get_all_populations()
    return populations.loc[populations.t >= 0].sort_values("t").wall_time.astype(float).tolist()


def predicted_next_generation_seconds(durations: list[float]) -> float | None:
    """Wall time the next generation will probably take, from those of the finished ones.

    Generations lengthen as epsilon falls and fewer proposals are accepted, so the next one is
    predicted as the last one times the last growth (at least 1); None before any has finished."""
    if not durations:
        return None
    growth = durations[-1] / durations[-2] if len(durations) > 1 and durations[-2] > 0 else 1.0
    return durations[-1] * max(growth, 1.0)


def _run_abc(abc, rules: StoppingRules, started: float, clock=time.perf_counter,
             after_generation=None, kernel_scaling=None) -> tuple[object, str]:
    """pyabc's own generation loop (ABCSMC.run) with its wall-time check replaced: pyabc checks only between
    generations, so a late, long generation would run on past ``--max-minutes``. The local sampler, which saves a
    generation's finished jobs, stops at the limit itself (``TimeLimitReached``); with another sampler no generation
    starts that is predicted to end after the limit.
    ``after_generation(history)`` (if given) runs after every generation and returns why to stop
    (the convergence rule) or None. ``kernel_scaling(t)`` (if given) is the proposal kernel's width in generation
    ``t``: where it differs from the width the kernel was fitted with, the kernel is refitted to generation t-1
    before generation t samples. Returns the history and why sampling stopped."""
    from .sampler import TimeLimitReached     # with pyabc: not imported by every orgsim command

    limit = rules.max_walltime_minutes * 60 if rules.max_walltime_minutes is not None else None
    t = abc.initialize_components_before_run(
        minimum_epsilon=rules.min_epsilon, min_acceptance_rate=rules.min_acceptance_rate, min_eps_diff=0.0,
        max_nr_populations=rules.generations if rules.generations is not None else np.inf,
        max_total_nr_simulations=rules.budget if rules.budget is not None else np.inf, max_walltime=None)
    first = t
    sampler = getattr(abc, "sampler", None)
    saves_jobs = hasattr(sampler, "start_generation")    # the local sampler (sim/calibration/sampler.py)
    while True:
        transition = abc.transitions[0] if kernel_scaling is not None else None
        if transition is not None and t > 0 and transition.scaling != kernel_scaling(t):
            transition.set_scaling(kernel_scaling(t))
            abc._fit_transitions(t)      # pyabc fitted it at the end of generation t-1, with the old width
            print(f"calibrate: generation {t}: proposal kernel scaling {transition.scaling:g}", file=sys.stderr)
        if saves_jobs:
            sampler.start_generation(abc, t, deadline=started + limit if limit is not None else None)
        try:
            result = abc.run_generation(t=t)
        except TimeLimitReached as stop:
            print(f"calibrate: Stop: {stop}.", file=sys.stderr)
            return abc.history, str(stop)
        if not result["successful"]:
            return abc.history, "pyabc could not complete the generation's sample"
        if saves_jobs:
            sampler.generation_stored()
        converged = after_generation(abc.history) if after_generation else None
        if converged:
            return abc.history, converged
        if abc.check_terminate(t=t, acceptance_rate=result["acceptance_rate"]):
            return abc.history, f"a stopping rule was met after {t - first + 1} generation(s) in this run"
        elapsed = clock() - started
        if limit is not None and saves_jobs and elapsed >= limit:
            reason = f"--max-minutes {rules.max_walltime_minutes:g} reached at the end of generation {t}"
            print(f"calibrate: Stop: {reason}.", file=sys.stderr)
            return abc.history, reason
        if limit is not None and not saves_jobs:
            predicted = predicted_next_generation_seconds(generation_seconds(abc.history))  # a resumed run's too
            if elapsed + predicted > limit:
                reason = (f"the next generation would take about {predicted / 60:.1f} min and end after "
                          f"--max-minutes {rules.max_walltime_minutes:g} ({elapsed / 60:.1f} min so far)")
                print(f"calibrate: Stop: {reason}.", file=sys.stderr)
                return abc.history, reason
        t += 1


def calibrate(setup: CalibrationSetup, rules: StoppingRules, *, workers: int = 2,
              scheduler: str | None = None, resume: bool = False, export_only: bool = False,
              results_root: Path = RESULTS_ROOT, posterior_dir: Path = POSTERIOR_DIR,
              kernel_scaling: float | None = None) -> Path:
    """Run (or resume) an ABC-SMC calibration; returns the exported posterior CSV.

    ``export_only`` samples nothing: it exports the last finished generation of calibration NAME
    (e.g. of one that was killed). ``kernel_scaling`` on a resume: the proposal kernel's width from the next
    generation on (``_change_kernel``).
    """
    run_dir = run_directory(setup.name, results_root)
    db_path, setup_path = run_dir / "abc.db", run_dir / "setup.json"
    if export_only:
        return _export_finished(setup.name, run_dir, rules, workers, scheduler, posterior_dir)
    if resume:
        if not setup_path.is_file() or not db_path.is_file():
            raise InputError(f"--resume: no calibration named '{setup.name}' in {run_dir.parent}")
        setup = stored_setup(_read_json(setup_path))
        _check_unchanged(setup, run_dir)
        if kernel_scaling is not None and kernel_scaling != setup.kernel_scaling:
            _change_kernel(setup, kernel_scaling, db_path)
    else:
        setup = new_setup(setup)
        if db_path.exists():
            raise InputError(f"{run_dir}: a calibration named '{setup.name}' exists; add --resume to "
                             "continue it, or choose another --name")
    show_progress()
    sampler, client = _make_sampler(workers, scheduler, run_dir, setup.seed)
    abc, targets, priors, scenarios = _build_abc(setup, sampler, run_dir)
    _check_one_particle(abc, priors)
    run_dir.mkdir(parents=True, exist_ok=True)
    earlier_seconds = _read_json(setup_path).get("wall_time_seconds", 0.0) if resume else 0.0
    started_at = _read_json(setup_path).get("started_at") if resume else None
    started_at = started_at or provenance()   # commit and time when the calibration first started
    write_json(setup_path, {"setup": asdict(setup), "wall_time_seconds": earlier_seconds,
                            "started_at": started_at, **provenance()})
    write_json(run_dir / "scenarios.json", scenarios)
    np.random.seed(setup.seed % 2**32)  # pyabc samples the prior and perturbations with numpy's global RNG
    db_url = f"sqlite:///{db_path.resolve()}"
    rule = rules.convergence_rule(setup.population_size)
    after_generation = _convergence_check(run_dir, priors, rule, rules, workers)
    started = time.perf_counter()
    # a terminated run (kill, a machine shutting down) ends as an interrupted one: its wall time is recorded
    in_main_thread = threading.current_thread() is threading.main_thread()   # only there can Python set handlers
    terminate = TerminateAsInterrupt(os.getpid())
    previous_handler = signal.signal(signal.SIGTERM, terminate) if in_main_thread else None
    try:
        if resume:
            history = abc.load(db_url, 1)
        else:
            history = abc.new(db_url, targets.observed(setup.trusts))
        already = after_generation(history) if resume and history.max_t >= 0 else None
        history, stop_reason = (history, f"already {already}") if already else \
            _run_abc(abc, rules, started, after_generation=after_generation,
                     kernel_scaling=lambda t: kernel_scaling_at(setup, t))
    except KeyboardInterrupt:
        from .sampler import JOB_DIR

        terminate.handled()
        saved = f" and the generation's finished jobs in {run_dir / JOB_DIR}" if (run_dir / JOB_DIR).is_dir() else ""
        print(f"calibrate: interrupted; finished generations are kept in {db_path}{saved}; continue with "
              f"--name {setup.name} --resume", file=sys.stderr)
        raise
    finally:
        if in_main_thread:
            terminate.restore(previous_handler)
        elapsed = earlier_seconds + time.perf_counter() - started
        write_json(setup_path, {"setup": asdict(setup), "wall_time_seconds": elapsed, "started_at": started_at,
                                **provenance()})
        if client is not None:
            client.close()
    posterior = export_posterior(history, setup, priors, rules, elapsed, workers, scheduler, posterior_dir, db_path,
                                 stop_reason=stop_reason)
    write_json(setup_path, {**_read_json(setup_path), "finished": stop_reason, "posterior": str(posterior)})
    return posterior


def kernel_scaling_at(setup: CalibrationSetup, t: int) -> float:
    """The proposal kernel's width in generation ``t`` (setup.json records when a resume changed it)."""
    changes = sorted(setup.kernel_scaling_changes, key=lambda c: c["from_generation"])
    scaling = changes[0]["from"] if changes else setup.kernel_scaling
    for change in changes:
        if t >= change["from_generation"]:
            scaling = change["to"]
    return float(scaling)


def _change_kernel(setup: CalibrationSetup, scaling: float, db_path: Path) -> None:
    """A resumed calibration's proposal kernel, made wider or narrower from its next generation on, and recorded.

    Any proposal density gives an exact importance sampler (the weights are prior over proposal density), so a
    kernel may change between generations; the width only trades acceptance against the weights' spread
    (docs/calibration.md, 'Proposal kernel'). Within a generation it may not: where the generation under way has
    saved jobs (drawn with the old width), the change waits for the generation after it. Recorded in setup.json
    and the posterior's manifest; ``_run_abc`` applies it when its generation starts (``kernel_scaling_at``)."""
    import pyabc

    from .sampler import JOB_DIR

    generation = pyabc.History(f"sqlite:///{db_path.resolve()}", _id=1).max_t + 1
    if any((db_path.parent / JOB_DIR).glob("*.pkl")):
        generation += 1
    setup.kernel_scaling_changes.append({"from_generation": generation, "from": setup.kernel_scaling, "to": scaling,
                                         "commit": provenance().get("git_commit")})
    print(f"calibrate: proposal kernel scaling {setup.kernel_scaling:g} -> {scaling:g} from generation {generation}",
          file=sys.stderr)
    setup.kernel_scaling = scaling


class TerminateAsInterrupt:
    """A SIGTERM handler: the calibration itself ends as interrupted (KeyboardInterrupt), so that its wall time is
    recorded; pyabc's forked workers inherit the handler and must die at once instead, as without it. (A worker
    that raised would, on its way out, wait to flush its results to a parent no longer reading them, and the
    parent, ending, waits for its workers: a hang.)

    Python ignores an exception raised where it cannot propagate: a SIGTERM that lands in an at-fork hook (pyabc
    forks its workers every generation; logging's lock release runs after each fork) prints "Exception ignored"
    and the calibration would run on, for a generation or for ever. So until the interrupt is ``handled()``, the
    signal is sent again every ``REPEAT_SECONDS`` after the last time it was raised."""

    REPEAT_SECONDS = 1.0

    def __init__(self, calibration_pid: int):
        self.calibration_pid = calibration_pid
        self._lock = threading.Lock()          # a repeat never lands after the handler is restored
        self._handled = threading.Event()
        self._raised_at: float | None = None

    def __call__(self, signum, frame) -> None:
        if os.getpid() != self.calibration_pid:
            os._exit(128 + signum)
        if self._handled.is_set():             # already ending: a late repeat must not break the clean-up
            return
        first = self._raised_at is None
        self._raised_at = time.monotonic()
        if first:
            threading.Thread(target=self._repeat, args=(signum,), name="sigterm-repeat", daemon=True).start()
        raise KeyboardInterrupt

    def _repeat(self, signum) -> None:
        while not self._handled.wait(self.REPEAT_SECONDS):
            with self._lock:
                if not self._handled.is_set() and time.monotonic() - self._raised_at >= self.REPEAT_SECONDS:
                    os.kill(self.calibration_pid, signum)

    def handled(self) -> None:
        """The interrupt reached the calibration: stop repeating it."""
        self._handled.set()

    def restore(self, previous) -> None:
        with self._lock:
            self._handled.set()
            signal.signal(signal.SIGTERM, previous)


def _convergence_check(run_dir: Path, priors: PriorSet, rule: ConvergenceRule | None,
                       rules: StoppingRules | None = None, workers: int = 1):
    """After each generation: the convergence measures of every generation so far, printed and written to
    generations.csv; returns why to stop when ``rule`` is met, else None. With ``rule.noise_floor``, a generation
    whose epsilon has not stopped falling by its change has its best particles re-run on fresh seeds first
    (noise.py; a few minutes against a generation's hours), unless it already has a noise record."""
    from .noise import noise_floor, noise_floors

    def check(history) -> str | None:
        records = generation_records(history, priors)
        if not records:
            return None
        last = records[-1]
        if rule is not None and rule.noise_floor and last["t"] not in noise_floors(run_dir) \
                and not (last["epsilon_change"] is not None and last["epsilon_change"] < rule.tol):
            noise_floor(run_dir, particles=rules.noise_particles, seeds=rules.noise_seeds, workers=workers,
                        progress=lambda line: print(line, file=sys.stderr, flush=True))
        add_noise_floors(records, noise_floors(run_dir))
        write_generations(records, run_dir / "generations.csv", rule)
        print(f"calibrate: {progress_line(records[-1], rule)}", file=sys.stderr, flush=True)
        if rule is not None and rule.met(records[-1]):
            return f"converged at generation {records[-1]['t']} ({rule.describe()})"
        return None
    return check


def is_finished(name: str, results_root: Path = RESULTS_ROOT) -> bool:
    """Whether calibration ``name`` ended by one of its stopping rules and exported its posterior."""
    return bool(_read_json(run_directory(name, results_root) / "setup.json").get("finished"))


def _export_finished(name: str, run_dir: Path, rules: StoppingRules, workers: int, scheduler: str | None,
                     posterior_dir: Path) -> Path:
    import pyabc

    db_path, setup_path = run_dir / "abc.db", run_dir / "setup.json"
    if not setup_path.is_file() or not db_path.is_file():
        raise InputError(f"--export: no calibration named '{name}' in {run_dir.parent}")
    saved = _read_json(setup_path)
    setup = stored_setup(saved)
    _check_unchanged(setup, run_dir)
    history = pyabc.History(f"sqlite:///{db_path.resolve()}", _id=1)
    if history.max_t < 0:
        raise InputError(f"--export: calibration '{name}' has no finished generation yet")
    _, priors = _load_inputs(setup)
    return export_posterior(history, setup, priors, rules, saved.get("wall_time_seconds", 0.0), workers,
                            scheduler, posterior_dir, db_path)


def _read_json(path: Path) -> dict:
    import json

    return json.loads(Path(path).read_text()) if Path(path).is_file() else {}


def posterior_frame(history, setup: CalibrationSetup, priors: PriorSet) -> pd.DataFrame:
    """Final population as a table: every behavioural parameter, per-trust columns, weight."""
    particles, weights = history.get_distribution(m=0, t=history.max_t)
    frame = pd.DataFrame(dict(setup.fixed_params), index=particles.index)  # the model's parameters when calibrated
    for prior in priors.priors:
        frame[prior.name] = particles[prior.name].to_numpy(dtype=float)
    frame["weight"] = np.asarray(weights, dtype=float) / np.sum(weights)
    return frame.reset_index(drop=True)


def export_posterior(history, setup: CalibrationSetup, priors: PriorSet, rules: StoppingRules,
                     wall_time_seconds: float, workers: int, scheduler: str | None,
                     posterior_dir: Path = POSTERIOR_DIR, db_path: Path | None = None,
                     stop_reason: str | None = None) -> Path:
    """Write calibration/posterior_<name>.csv and its manifest; returns the CSV path."""
    import pyabc

    from .transition import PRIOR_SHARE

    posterior_dir = Path(posterior_dir)
    posterior_dir.mkdir(parents=True, exist_ok=True)
    csv_path = posterior_dir / f"posterior_{setup.name}.csv"
    frame = posterior_frame(history, setup, priors)
    tmp = csv_path.with_name(csv_path.name + ".tmp")
    frame.to_csv(tmp, index=False, float_format="%.6g")
    tmp.replace(csv_path)
    from .noise import noise_floors

    generations = add_noise_floors(generation_records(history, priors),
                                   noise_floors(db_path.parent) if db_path else {})
    rule = rules.convergence_rule(setup.population_size)
    total = int(history.total_nr_simulations)
    converged = bool(rule and generations and rule.met(generations[-1]))
    stopped_because = stop_reason or "exported from the finished generations (--export)"
    write_json(manifest_path(csv_path), {
        # what a user must know first: an unconverged posterior is interim, whatever stopped it
        "status": "converged" if converged else f"interim: not converged ({stopped_because})",
        "name": setup.name,
        "posterior_file": csv_path.name,
        "trusts_calibrated": setup.trusts,
        "leave_out": setup.leave_out,
        "scale": setup.scale,
        "seed": setup.seed,
        "end": setup.end,
        "population_size": setup.population_size,
        "replicates": setup.replicates,
        "budget": {k: v for k, v in asdict(rules).items()},
        "generations": len(generations),
        "stopped_because": stopped_because,
        "convergence_rule": rule.describe() if rule else None,
        "converged": converged,
        "final_epsilon": generations[-1]["epsilon"] if generations else None,
        "total_simulations": total,
        "trust_simulations": total * len(setup.trusts) * setup.replicates,
        "wall_time_seconds": round(wall_time_seconds, 1),
        "simulations_per_second": round(total / wall_time_seconds, 3) if wall_time_seconds else None,
        "sampler": f"DaskDistributedSampler({scheduler})" if scheduler else
                   f"ResumableSampler(workers={workers}): seeded jobs, pyabc's MappingSampler scheme (sim/calibration/sampler.py)",
        "distance": "pyabc.AdaptivePNormDistance(p=1, scale_function=rmsd, fixed_weights=target weights)",
        "transition": (f"{1 - PRIOR_SHARE:g} x per-parameter pyabc.MultivariateNormalTransition(scaling="
                       f"{setup.kernel_scaling}) in logit coordinates + {PRIOR_SHARE:g} x the prior"),
        "kernel_scaling_changes": setup.kernel_scaling_changes,
        "pyabc_version": pyabc.__version__,
        "targets_file": portable_path(str(input_path(setup.targets_path))),
        "targets_sha256": setup.targets_sha256,
        "fitted_families": setup.fit_families or "all",
        "priors_file": portable_path(str(input_path(setup.priors_path))),
        "priors_sha256": setup.priors_sha256,
        "priors": [{"name": p.name, "low": p.low, "high": p.high, "log": p.log, "why": p.why}
                   for p in priors.priors],
        "fixed_params": setup.fixed_params,
        "database": portable_path(str(db_path)) if db_path else None,   # relative to the repository when inside it
        "generation_table": generations,
        "scenarios": _read_json(db_path.parent / "scenarios.json") if db_path else {},
        "started_at": _read_json(db_path.parent / "setup.json").get("started_at") if db_path else None,
        **provenance(),
    })
    return csv_path


def manifest_path(posterior_csv: str | Path) -> Path:
    posterior_csv = Path(posterior_csv)
    return posterior_csv.with_name(posterior_csv.stem + ".manifest.json")
