"""The one batch runner: maps run specs over joblib workers or a Dask cluster, resumably.

Use it for anything that needs many model runs (sweeps, sensitivity analyses, what-if
comparisons, posterior ensembles)::

    from sim.experiments.batch import RunSpec, OutputSelection, run_batch, read_runs

    specs = [RunSpec(run_index=i, scenario="SATH", params=params, seed_index=i, base_seed=1)
             for i in range(100)]
    result = run_batch(specs, "results/my-batch", OutputSelection(final=("quality_final",)),
                       workers=2)              # or scheduler="tcp://host:8786"
    result.runs                                # one row per run, sorted by run_index

A run is fixed by its spec: scenario name (+ overrides, deep-merged by ``load_scenario``), the
full behavioural parameter dict, scale, end date and its seed
``np.random.SeedSequence(base_seed, spawn_key=(seed_index,))``. Nothing about a run depends on
the worker count, the backend or which other runs are in the batch.

Layout of ``out_dir`` (self-describing):

- ``manifest.json``: package version, git commit, resolved scenarios, default and varied
  parameters, seed rule, outputs kept, a fingerprint of the specs, the caller's description
  (e.g. the experiment file) and one entry per session (start, end, workers, backend, status).
- ``runs/part-NNNNNN.parquet``: one row per finished run: ``run_index``, spec columns
  (``scenario``, ``overrides`` as JSON, ``seed_index``, ``base_seed``, ``scale``, ``end``,
  ``param_<name>`` for every parameter), the spec's labels and the kept outputs.
- ``series/part-NNNNNN.parquet``: the kept weekly series, long format, keyed by ``run_index``
  (only when series outputs are requested).
- ``runs/run-NNNNNNNNN.json`` (and ``series/run-NNNNNNNNN.parquet``): a finished run not yet gathered
  into a part.
- ``.lock``: locked (``fcntl.flock``) by the one process writing the folder; holds its pid.

Every run is written as soon as it finishes, as its own ``run-`` file; every ``chunk_size`` runs
(and at the end) those files are gathered into one part. Every file is written to a temporary
name and renamed, a series file before its runs file, a part before the run files it gathers are
deleted, so a crash or ``kill -9`` loses no finished run and never corrupts what is written; the
next session clears what such a kill leaves half-done. Local workers end themselves within a second
if their sweep dies. Calling ``run_batch`` again with the same specs resumes: finished runs are
read back, not recomputed. Specs whose first runs are exactly the folder's runs extend it (an adaptive
Sobol design doubling N reuses every finished run); an earlier, smaller batch of the folder
(``fingerprints`` in the manifest) reads its own runs back. Any other specs on the same folder are
refused, and so is a second writer while the first still runs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pandas as pd
from joblib import Parallel, delayed, parallel_config
from tqdm.auto import tqdm

import sim
from sim.errors import InputError
from sim.experiments.outputs import flatten_summary
from sim.params import default_params, validate_params
from sim.runner import git_commit, simulate, why_not_created
from sim.scenario import check_run_end, load_scenario

SEED_RULE = "np.random.SeedSequence(base_seed, spawn_key=(seed_index,))"


@dataclass(frozen=True)
class RunSpec:
    """Everything that fixes one model run. ``labels`` are copied into the results row (design coordinates)."""

    run_index: int
    scenario: str
    params: dict[str, float]
    seed_index: int
    base_seed: int = 0
    scale: float = 1.0
    end: dt.date | None = None
    overrides: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)

    def seed_sequence(self) -> np.random.SeedSequence:
        return np.random.SeedSequence(self.base_seed, spawn_key=(self.seed_index,))

    def as_record(self) -> dict:
        record = {
            "run_index": self.run_index,
            "scenario": self.scenario,
            "overrides": _canonical_json(self.overrides),
            "seed_index": self.seed_index,
            "base_seed": self.base_seed,
            "scale": self.scale,
            "end": self.end.isoformat() if self.end else None,
        }
        record.update({f"param_{name}": value for name, value in self.params.items()})
        record.update(self.labels)
        return record


@dataclass(frozen=True)
class OutputSelection:
    """Which outputs to keep: summary outputs (``None`` keeps all) and weekly series columns."""

    final: tuple[str, ...] | None = None
    series: tuple[str, ...] = ()


@dataclass
class BatchResult:
    runs: pd.DataFrame
    series: pd.DataFrame | None
    total: int
    done_before: int
    computed: int
    out_dir: Path | None


def run_batch(
    specs: list[RunSpec],
    out_dir: str | Path | None,
    outputs: OutputSelection = OutputSelection(),
    *,
    workers: int = 1,
    scheduler: str | None = None,
    description: dict | None = None,
    chunk_size: int = 50,
    progress: bool = True,
) -> BatchResult:
    """Run every spec not yet finished in ``out_dir`` and return all results, sorted by run_index.

    ``workers``: local joblib (loky) processes; 1 runs in this process. ``scheduler``: address of a
    Dask distributed scheduler; the same work then runs on that cluster through joblib's dask
    backend (``workers`` is ignored). ``out_dir=None`` keeps results in memory only.
    Raises InputError for bad specs or options before any run starts, and when another process is
    writing ``out_dir``.
    """
    _check_options(specs, workers, chunk_size)
    if workers == 1 and not scheduler and specs:
        # numba loads each kernel from its disk cache on first use; a Ctrl-C inside that loader comes out as a
        # SystemError, not KeyboardInterrupt: load them now, before anything is written or run
        from sim.kernels import compile_all
        compile_all()
    manifest = build_manifest(specs, outputs, description)
    store = ResultStore(Path(out_dir)) if out_dir is not None else MemoryStore()
    store.open(manifest, lambda count: specs_fingerprint(specs[:count], outputs))
    try:
        mine = {spec.run_index for spec in specs}
        done = store.done_run_indices() & mine      # a folder extended beyond these specs holds more
        todo = [spec for spec in specs if spec.run_index not in done]
        store.start_session(workers=workers, scheduler=scheduler, done_before=len(done), todo=len(todo))
        try:
            _run_and_store(todo, outputs, store, workers, scheduler, len(specs), len(done), chunk_size, progress)
        except KeyboardInterrupt:
            store.end_session("interrupted")
            raise
        except Exception as error:
            store.end_session(f"failed: {error}")
            raise
        store.end_session("complete")
        runs = store.runs()
        series = store.series() if outputs.series else None
        if len(runs) > len(specs):
            runs = runs[runs["run_index"].isin(mine)].reset_index(drop=True)
            series = series[series["run_index"].isin(mine)].reset_index(drop=True) if series is not None else None
        return BatchResult(runs, series, len(specs), len(done), len(todo), store.directory)
    finally:
        store.close()


def _check_options(specs: list[RunSpec], workers: int, chunk_size: int) -> None:
    if workers < 1:
        raise InputError(f"--workers must be 1 or more (got {workers})")
    if chunk_size < 1:
        raise InputError(f"--chunk-size must be 1 or more (got {chunk_size})")
    indices = [spec.run_index for spec in specs]
    if len(set(indices)) != len(indices):
        raise InputError("run specs must have distinct run_index values")


def _run_and_store(todo, outputs, store, workers, scheduler, total, done, chunk_size, progress):
    with tqdm(total=total, initial=done, unit="run", disable=not progress, dynamic_ncols=True) as bar:
        try:
            for row, run_series in map_runs(todo, outputs, workers, scheduler):
                store.add(row, run_series)      # written now: a kill loses no finished run
                bar.update(1)
                if store.unpacked >= chunk_size:
                    store.pack()
        finally:
            store.pack()


def map_runs(specs: list[RunSpec], outputs: OutputSelection, workers: int = 1,
             scheduler: str | None = None) -> Iterator[tuple[dict, pd.DataFrame | None]]:
    """Yield (results row, series or None) for each spec, in order of completion."""
    if not specs:
        return
    tasks = (delayed(execute_run)(spec, outputs) for spec in specs)
    if scheduler:
        with _dask_client(scheduler), parallel_config(backend="dask"):
            yield from Parallel(return_as="generator_unordered")(tasks)
    elif workers == 1:
        for spec in specs:
            yield execute_run(spec, outputs)
    else:
        # one run per task, so that a run is returned (and written) as soon as it finishes
        yield from Parallel(n_jobs=workers, return_as="generator_unordered", batch_size=1,
                            initializer=exit_with_parent, initargs=(os.getpid(),))(tasks)


def exit_with_parent(parent_pid: int, poll_seconds: float = 0.5) -> None:
    """Worker initializer: end this worker soon after the sweep that started it dies (loky's workers
    otherwise outlive a killed parent for many minutes, holding memory and computing for no one)."""
    def watch():
        while os.getppid() == parent_pid:
            time.sleep(poll_seconds)
        os._exit(1)

    threading.Thread(target=watch, name="orgsim-exit-with-parent", daemon=True).start()


@contextlib.contextmanager
def _dask_client(address: str):
    from distributed import Client

    try:
        client = Client(address, timeout="15s")
    except (OSError, TimeoutError, ValueError) as error:
        raise InputError(f"--scheduler {address}: cannot connect to a Dask scheduler there ({error})") from None
    try:
        yield client
    finally:
        client.close()


def execute_run(spec: RunSpec, outputs: OutputSelection) -> tuple[dict, pd.DataFrame | None]:
    """Run one spec; return its results row and, if asked for, its weekly series."""
    scenario = _scenario(spec.scenario, _canonical_json(spec.overrides))
    result = simulate(scenario, dict(spec.params), spec.seed_sequence(), scale=spec.scale, end=spec.end)
    summary = flatten_summary(result.summary)
    kept = summary if outputs.final is None else {name: summary.get(name) for name in outputs.final}
    row = {**spec.as_record(), **kept}
    if not outputs.series:
        return row, None
    series = result.timeseries[[c for c in ("trust", "week", "date") if c in result.timeseries] + list(outputs.series)]
    return row, series.assign(run_index=spec.run_index)


@functools.lru_cache(maxsize=64)
def _scenario(name: str, overrides_json: str):
    return load_scenario(name, json.loads(overrides_json) or None)


def _canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def build_manifest(specs: list[RunSpec], outputs: OutputSelection, description: dict | None) -> dict:
    """The manifest of a batch; also validates every scenario and parameter set before any run."""
    scenarios = {}
    for key in sorted({(spec.scenario, _canonical_json(spec.overrides)) for spec in specs}):
        label = key[0] if key[1] == "{}" else f"{key[0]} + {key[1]}"
        scenarios[label] = _scenario(*key).model_dump(mode="json")
    for spec in specs:
        check_run_end(_scenario(spec.scenario, _canonical_json(spec.overrides)), spec.end, "run end")
    for params_json in {_canonical_json(spec.params) for spec in specs}:
        validate_params(json.loads(params_json))
    defaults = default_params()
    varied = sorted({name for spec in specs for name, value in spec.params.items() if value != defaults.get(name)})
    return {
        "kind": "orgsim batch",
        "package_version": sim.__version__,
        "git_commit": git_commit(),
        "created": _now(),
        "runs": len(specs),
        "fingerprint": specs_fingerprint(specs, outputs),
        "seed_rule": SEED_RULE,
        "base_seeds": sorted({spec.base_seed for spec in specs}),
        "scales": sorted({spec.scale for spec in specs}),
        "scenarios": scenarios,
        "parameters": {"defaults": defaults, "varied": varied},
        "outputs": {"final": list(outputs.final) if outputs.final is not None else "all", "series": list(outputs.series)},
        "layout": {"runs": "runs/part-*.parquet (one row per run)", "series": "series/part-*.parquet (long, by run_index)"},
        "description": description or {},
        "sessions": [],
    }


def specs_fingerprint(specs: list[RunSpec], outputs: OutputSelection) -> str:
    digest = hashlib.sha256()
    for spec in specs:
        digest.update(_canonical_json(spec.as_record()).encode())
    digest.update(_canonical_json([outputs.final, outputs.series]).encode())
    return digest.hexdigest()


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class MemoryStore:
    """Results kept in memory (``out_dir=None``)."""

    directory = None
    unpacked = 0

    def __init__(self):
        self._rows: list[dict] = []
        self._series: list[pd.DataFrame] = []

    def open(self, manifest: dict, fingerprint_of_first=None) -> None:
        self.manifest = manifest

    def done_run_indices(self) -> set[int]:
        return set()

    def start_session(self, **session) -> None:
        pass

    def end_session(self, status: str) -> None:
        pass

    def close(self) -> None:
        pass

    def add(self, row: dict, series: pd.DataFrame | None) -> None:
        self._rows.append(row)
        if series is not None:
            self._series.append(series)

    def pack(self) -> None:
        pass

    def runs(self) -> pd.DataFrame:
        return _sorted_runs(pd.DataFrame(self._rows))

    def series(self) -> pd.DataFrame:
        return _sorted_series(pd.concat(self._series, ignore_index=True)) if self._series else pd.DataFrame()


class ResultStore:
    """Parquet results and a manifest in one folder, written by one process at a time (module docstring)."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.runs_dir = directory / "runs"
        self.series_dir = directory / "series"
        self.manifest_path = directory / "manifest.json"
        self.lock_path = directory / ".lock"
        self._lock = None
        self._added: dict[str, tuple[dict, pd.DataFrame | None]] = {}   # written singly, not yet packed

    def open(self, manifest: dict, fingerprint_of_first=None) -> None:
        """Lock the folder (held until ``close``), clear what a killed writer left half-done, check or
        write the manifest. A file, or a folder of other files, is refused before anything is written.
        ``fingerprint_of_first(n)``: the fingerprint of the first n of the new specs, to extend the folder's runs."""
        if self.directory.exists() and not self.directory.is_dir():
            raise InputError(f"{self.directory}: is a file, not a folder; choose another --out")
        if self.directory.is_dir() and not self.manifest_path.exists() and \
                any(entry.name != self.lock_path.name and entry.suffix != ".tmp" for entry in self.directory.iterdir()):
            raise InputError(f"{self.directory}: the folder holds other files and no manifest.json of orgsim "
                             "results; choose a new or empty folder for --out")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._take_lock()
        except OSError as error:
            self.close()
            raise InputError(f"{self.directory}: cannot create the results folder "
                             f"({why_not_created(self.directory, error)}); choose another --out") from None
        try:
            self._open_locked(manifest, fingerprint_of_first)
        except BaseException:
            self.close()
            raise

    def _open_locked(self, manifest: dict, fingerprint_of_first) -> None:
        manifest["fingerprints"] = {str(manifest["runs"]): manifest["fingerprint"]}
        if self.manifest_path.exists():
            self.manifest = self._read_manifest()
            if self.manifest.get("fingerprint") != manifest["fingerprint"]:
                self._extend(manifest, fingerprint_of_first)
        else:
            self.manifest = manifest
            self._write_manifest()
        self.runs_dir.mkdir(exist_ok=True)
        self.series_dir.mkdir(exist_ok=True)
        self._remove_debris()

    def _extend(self, manifest: dict, fingerprint_of_first) -> None:
        """Accept specs that extend the folder's runs (the folder's are their first runs, exactly: an adaptive
        design doubling its N) or that are an earlier, smaller batch of this folder; refuse any other."""
        stored, count = self.manifest, int(self.manifest.get("runs", 0))
        history = stored.get("fingerprints", {str(count): stored.get("fingerprint")})
        if manifest["runs"] > count and fingerprint_of_first and fingerprint_of_first(count) == stored.get("fingerprint"):
            self.manifest = {**manifest, "created": stored.get("created"), "sessions": stored.get("sessions", []),
                             "fingerprints": {**history, **manifest["fingerprints"]}}
            self._write_manifest()
        elif history.get(str(manifest["runs"])) != manifest["fingerprint"]:
            raise InputError(
                f"{self.directory} holds results of different runs (another experiment definition, "
                "scale, seed or outputs); choose another --out folder or delete that one"
            )

    def _take_lock(self) -> None:
        import fcntl

        self._lock = open(self.lock_path, "a+")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.seek(0)
            holder = self._lock.read().strip() or "unknown"
            self.close()
            raise InputError(f"{self.directory} is being written by another orgsim process (pid {holder}); wait for it "
                             "to finish (then run again to add what is missing), or choose another --out") from None
        self._lock.truncate(0)
        self._lock.write(f"{os.getpid()}\n")
        self._lock.flush()

    def close(self) -> None:
        """Release the folder (closing the file releases the flock)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _read_manifest(self) -> dict:
        try:
            return json.loads(self.manifest_path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise InputError(f"{self.manifest_path}: unreadable manifest ({error})") from None

    def _remove_debris(self) -> None:
        """What a killed writer left half-done: temporary files, series files whose runs file never
        landed, and run files already gathered into a part."""
        for leftover in [*self.runs_dir.glob("*.tmp"), *self.series_dir.glob("*.tmp")]:
            leftover.unlink()
        landed = {path.stem for path in [*self._parts(self.runs_dir), *self._singles(self.runs_dir)]}
        for orphan in self.series_dir.glob("*.parquet"):
            if orphan.stem not in landed:
                orphan.unlink()
        packed = set(self._indices(self._parts(self.runs_dir)))
        for single in self._singles(self.runs_dir):
            if _run_index(single) in packed:
                (self.series_dir / f"{single.stem}.parquet").unlink(missing_ok=True)
                single.unlink()

    @staticmethod
    def _indices(parts) -> list[int]:
        return [i for part in parts for i in pd.read_parquet(part, columns=["run_index"])["run_index"].tolist()]

    def done_run_indices(self) -> set[int]:
        return set(self._indices(self._parts(self.runs_dir))) | {_run_index(p) for p in self._singles(self.runs_dir)}

    def start_session(self, *, workers, scheduler, done_before, todo) -> None:
        self.manifest["sessions"].append({
            "started": _now(), "git_commit": git_commit(), "workers": workers,
            "backend": f"dask {scheduler}" if scheduler else ("in-process" if workers == 1 else "joblib loky"),
            "runs_done_before": done_before, "runs_to_do": todo, "status": "running",
        })
        self._write_manifest()

    def end_session(self, status: str) -> None:
        self.manifest["sessions"][-1].update(ended=_now(), status=status)
        self.manifest["complete"] = status == "complete" and len(self.done_run_indices()) >= self.manifest["runs"]
        self._write_manifest()

    @property
    def unpacked(self) -> int:
        return len(self._added)

    def add(self, row: dict, series: pd.DataFrame | None) -> None:
        """Write one finished run: its series (parquet), then its row (JSON, quick to write), which
        says the run is complete."""
        stem = f"run-{row['run_index']:09d}"
        if series is not None:
            _write_atomically(series, self.series_dir / f"{stem}.parquet")
        temporary = self.runs_dir / f"{stem}.json.tmp"
        temporary.write_text(json.dumps(row, default=_plain))
        os.replace(temporary, self.runs_dir / f"{stem}.json")
        self._added[stem] = (row, series)

    def pack(self) -> None:
        """Gather the single-run files into one part (series part, runs part, then delete the singles);
        runs of this session come from memory, those a killed session left from their files."""
        singles = self._singles(self.runs_dir)
        if not singles:
            return
        rows, series = [], []
        for single in singles:
            row, run_series = self._added.get(single.stem) or (json.loads(single.read_text()), None)
            series_file = self.series_dir / f"{single.stem}.parquet"
            if run_series is None and series_file.exists():
                run_series = pd.read_parquet(series_file)
            rows.append(row)
            if run_series is not None:
                series.append(run_series)
        name = f"part-{self._next_part_number():06d}.parquet"
        if series:
            _write_atomically(pd.concat(series, ignore_index=True), self.series_dir / name)
        _write_atomically(pd.DataFrame(rows), self.runs_dir / name)
        for single in singles:
            single.unlink()
            (self.series_dir / f"{single.stem}.parquet").unlink(missing_ok=True)
        self._added.clear()

    def _next_part_number(self) -> int:
        numbers = [int(path.stem.split("-")[1]) for path in self._parts(self.runs_dir)]
        return max(numbers, default=-1) + 1

    def _write_manifest(self) -> None:
        temporary = self.manifest_path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(self.manifest, indent=2, default=str))
        os.replace(temporary, self.manifest_path)

    @staticmethod
    def _parts(directory: Path) -> list[Path]:
        return sorted(directory.glob("part-*.parquet"))

    @staticmethod
    def _singles(directory: Path, suffix: str = ".json") -> list[Path]:
        """Finished runs not yet in a part: ``run-N.json`` in runs/, ``run-N.parquet`` in series/."""
        return sorted(directory.glob(f"run-*{suffix}"))

    def runs(self) -> pd.DataFrame:
        return read_runs(self.directory)

    def series(self) -> pd.DataFrame:
        return read_series(self.directory)


def _write_atomically(frame: pd.DataFrame, path: Path) -> None:
    temporary = path.with_name(path.name + ".tmp")
    frame.to_parquet(temporary, index=False)
    os.replace(temporary, path)


def read_runs(out_dir: str | Path) -> pd.DataFrame:
    """All finished runs in a results folder, one row per run, sorted by run_index."""
    frame = _read_all(Path(out_dir) / "runs", ".json")
    return _sorted_runs(frame.drop_duplicates("run_index") if not frame.empty else frame)


def read_series(out_dir: str | Path) -> pd.DataFrame:
    """The kept weekly series of a results folder, sorted by run_index and week."""
    frame = _read_all(Path(out_dir) / "series", ".parquet")
    keys = [key for key in ("run_index", "trust", "week") if key in frame]
    return _sorted_series(frame.drop_duplicates(keys) if not frame.empty else frame)


def _read_all(directory: Path, suffix: str) -> pd.DataFrame:
    """Single-run files, then parts: a single-run file gathered into a part meanwhile (and gone) is in a
    part listed after it; a run read twice (from both) is dropped by the caller."""
    frames, rows = [], []
    for single in ResultStore._singles(directory, suffix):
        with contextlib.suppress(FileNotFoundError):
            if single.suffix == ".json":
                rows.append(json.loads(single.read_text()))
            else:
                frames.append(pd.read_parquet(single))
    frames += [pd.DataFrame(rows)] if rows else []
    frames += [pd.read_parquet(part) for part in ResultStore._parts(directory)]
    return _concat(frames)


def _run_index(single: Path) -> int:
    return int(single.stem.split("-")[1])


def _plain(value):
    """JSON for the numpy scalars of a results row."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value)}")


def read_manifest(out_dir: str | Path) -> dict:
    return json.loads((Path(out_dir) / "manifest.json").read_text())


def _concat(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    frames = list(frames)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _sorted_runs(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return frame
    return frame.sort_values("run_index", kind="stable").reset_index(drop=True)


def _sorted_series(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return frame
    keys = [key for key in ("run_index", "trust", "week") if key in frame]
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)
