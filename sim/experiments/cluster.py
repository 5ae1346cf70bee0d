"""Where a command's runs go beyond this machine: an existing Dask scheduler, or an HPC batch system through
dask-jobqueue.

One code path. Every command that runs batches takes ``--scheduler ADDRESS`` (an existing Dask scheduler; the runs go
there through joblib's dask backend, ``sim.experiments.batch``, or pyabc's Dask sampler in ``calibrate``) and
``--cluster KIND --cluster-config FILE``: ``dask_backend(args)`` (around every handler, in ``sim.cli.main``) checks the
file, starts a dask-jobqueue cluster (a scheduler in this process, and ``jobs`` batch jobs each running Dask workers),
gives its scheduler's address to the command as ``--scheduler``, and closes it (cancelling the jobs) when the command
ends, however it ends. The command itself never knows the difference.

The configuration file (YAML, every field checked; sizes per job)::

    cores: 8                      # cores per job: one single-threaded worker process per core
    memory: 16GB                  # memory per job
    walltime: "02:00:00"          # per job, HH:MM:SS
    jobs: 4                       # jobs submitted: 4 x 8 = 32 workers
    queue: short                  # optional: partition (SLURM) or queue
    account: my-project           # optional: account charged
    job_script_prologue: ["source /home/me/orgsim/.venv/bin/activate"]   # optional: lines run before the worker
    job_extra_directives: ["--qos=normal"]                                # optional: extra #SBATCH / #PBS lines
    python: /home/me/orgsim/.venv/bin/python                              # optional: the workers' Python
    local_directory: /tmp         # optional: workers' scratch space
    interface: ib0                # optional: network interface of scheduler and workers
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

from pydantic import Field, ValidationError, field_validator

from sim.errors import InputError, InputModel, read_yaml, validation_message

KINDS = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "sge": "SGECluster", "lsf": "LSFCluster",
         "htcondor": "HTCondorCluster", "local": "local.LocalCluster"}
# "local" runs the same job scripts as processes on this machine: to try a configuration before submitting it
LOCAL_ONLY_IGNORES = ("queue", "account", "job_script_prologue", "job_extra_directives")
WALLTIME = re.compile(r"^(\d+-)?\d{1,3}:\d{2}(:\d{2})?$")


class ClusterConfig(InputModel):
    """A batch system's job: see the module docstring."""

    cores: int = Field(ge=1)
    memory: str
    walltime: str
    jobs: int = Field(ge=1)
    queue: str | None = None
    account: str | None = None
    job_script_prologue: list[str] = Field(default_factory=list)
    job_extra_directives: list[str] = Field(default_factory=list)
    python: str | None = None
    local_directory: str | None = None
    interface: str | None = None

    @field_validator("memory")
    @classmethod
    def _a_size(cls, memory: str) -> str:
        from dask.utils import parse_bytes

        try:
            if parse_bytes(memory) <= 0:
                raise ValueError
        except (ValueError, TypeError):
            raise ValueError(f"{memory!r} is not a size; give e.g. 16GB or 4000MB") from None
        return memory

    @field_validator("walltime")
    @classmethod
    def _a_duration(cls, walltime: str) -> str:
        if not WALLTIME.match(str(walltime)):
            raise ValueError(f"{walltime!r} is not a duration; give HH:MM:SS (e.g. \"02:00:00\"), quoted")
        return walltime


def add_cluster_options(parser) -> None:
    """``--cluster KIND --cluster-config FILE`` beside a command's ``--scheduler``."""
    parser.add_argument("--cluster", choices=sorted(KINDS),
                        help="start Dask workers as jobs of this batch system (dask-jobqueue) and run there; "
                             "needs --cluster-config")
    parser.add_argument("--cluster-config", type=Path, metavar="FILE",
                        help="YAML: cores, memory, walltime and jobs per job, optional queue, account, "
                             "job_script_prologue ... (docs/experiments.md, 'Running on a cluster')")


def load_cluster_config(path: Path) -> ClusterConfig:
    data = read_yaml(path, "cluster configuration")
    if not isinstance(data, dict):
        raise InputError(f"--cluster-config {path}: expected a mapping of fields (cores, memory, walltime, jobs, ...)")
    try:
        return ClusterConfig.model_validate(data)
    except ValidationError as error:
        raise InputError(f"--cluster-config {path}: {validation_message(error)}") from None


def build_cluster(kind: str, config: ClusterConfig):
    """The dask-jobqueue cluster object (its scheduler started, no job submitted yet): one single-threaded worker
    process per core of each job, as every run is one single-threaded process's work."""
    options = {"cores": config.cores, "processes": config.cores, "memory": config.memory,
               "walltime": config.walltime, "queue": config.queue, "account": config.account,
               "job_script_prologue": config.job_script_prologue, "job_extra_directives": config.job_extra_directives,
               "local_directory": config.local_directory, "interface": config.interface,
               "scheduler_options": {"dashboard_address": None}}
    if config.python:
        options["python"] = config.python
    if kind == "htcondor":   # HTCondor has no queues or accounts
        for name in ("queue", "account"):
            options.pop(name)
    if kind == "local":      # no batch system: its directives mean nothing, and the script runs as one command line
        for name in LOCAL_ONLY_IGNORES:
            options.pop(name)
    import importlib

    module, _, name = f"dask_jobqueue.{KINDS[kind]}".rpartition(".")
    cluster_class = getattr(importlib.import_module(module), name)
    return cluster_class(**{key: value for key, value in options.items() if value is not None})


def check_options(args) -> ClusterConfig | None:
    """The cluster configuration asked for (None without ``--cluster``); InputError for options that do not fit."""
    kind, path = getattr(args, "cluster", None), getattr(args, "cluster_config", None)
    if kind is None:
        if path is not None:
            raise InputError("--cluster-config is for --cluster KIND (e.g. --cluster slurm)")
        return None
    if path is None:
        raise InputError(f"--cluster {kind} needs --cluster-config FILE (cores, memory, walltime, jobs)")
    if getattr(args, "scheduler", None):
        raise InputError("give --scheduler (an existing Dask scheduler) or --cluster (start one), not both")
    return load_cluster_config(path)


@contextlib.contextmanager
def dask_backend(args):
    """Around a command: with ``--cluster``, start the cluster and its jobs, run the command on it (as
    ``--scheduler``) and close it after; otherwise nothing."""
    config = check_options(args)
    if config is None:
        yield
        return
    cluster = build_cluster(args.cluster, config)
    try:
        cluster.scale(jobs=config.jobs)
        print(f"{args.cluster}: {config.jobs} job(s) of {config.cores} worker(s) submitted; scheduler at "
              f"{cluster.scheduler_address}", flush=True)
        args.scheduler = cluster.scheduler_address
        yield
    finally:
        cluster.close()
