"""Beyond one machine: the same command on an existing Dask scheduler and on a dask-jobqueue cluster gives the local
results row for row; a batch system's job script carries the configuration; a bad configuration is refused."""

import subprocess
import sys

import pandas as pd
import pytest
import yaml

from sim.experiments.batch import read_manifest, read_runs
from sim.experiments.cluster import build_cluster, load_cluster_config
from sim.errors import InputError
from test_experiments_helpers import REPO, run_cli, write_experiment

distributed = pytest.importorskip("distributed")
pytest.importorskip("dask_jobqueue")

CONFIG = {"cores": 4, "memory": "8GB", "walltime": "01:30:00", "queue": "short", "account": "orgsim-proj", "jobs": 3,
          "job_script_prologue": ["source /home/me/orgsim/.venv/bin/activate"],
          "job_extra_directives": ["--qos=normal"]}


def tiny_sweep(tmp_path):
    return write_experiment(tmp_path, name="spread", replicates=2, design={"kind": "latin_hypercube", "samples": 3,
                                                                          "seed": 2},
                            parameters={"rpiw_effect": {}, "relapse_rate": {}})


def config_file(tmp_path, **changes):
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump({**CONFIG, **changes}))
    return path


def test_sweep_on_an_existing_scheduler_equals_the_local_sweep_row_for_row(tmp_path):
    path = tiny_sweep(tmp_path)
    assert run_cli("sweep", path, "--out", tmp_path / "local", "--no-progress").returncode == 0
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp",
                                  dashboard_address=None) as cluster:
        assert cluster.scheduler_address.startswith("tcp://")
        result = run_cli("sweep", path, "--out", tmp_path / "dask", "--scheduler", cluster.scheduler_address,
                         "--no-progress")
    assert result.returncode == 0, result.stderr
    assert f"on Dask at {cluster.scheduler_address}" in result.stdout
    local, on_dask = read_runs(tmp_path / "local"), read_runs(tmp_path / "dask")
    pd.testing.assert_frame_equal(local, on_dask)
    assert local["quality_final"].nunique() > 1
    assert read_manifest(tmp_path / "dask")["sessions"][-1]["backend"] == f"dask {cluster.scheduler_address}"


def test_slurm_job_script_carries_the_configuration(tmp_path):
    config = load_cluster_config(config_file(tmp_path))
    cluster = build_cluster("slurm", config)     # no SLURM here: the object and its script, no job submitted
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    for line in ("#SBATCH -p short", "#SBATCH -A orgsim-proj", "#SBATCH --cpus-per-task=4", "#SBATCH --mem=8G",
                 "#SBATCH -t 01:30:00", "#SBATCH --qos=normal", "source /home/me/orgsim/.venv/bin/activate"):
        assert line in script, line
    assert "--nworkers 4" in script and "--nthreads 1" in script    # one single-threaded worker per core
    pbs = build_cluster("pbs", config)
    try:
        assert "#PBS -q short" in pbs.job_script() and "walltime=01:30:00" in pbs.job_script()
    finally:
        pbs.close()


@pytest.mark.parametrize("changes, words", [
    ({"memory": "lots"}, "field 'memory'"),
    ({"walltime": "90 minutes"}, "field 'walltime'"),
    ({"cores": 0}, "field 'cores'"),
    ({"jobs": True}, "field 'jobs'"),
    ({"nodes": 2}, "field 'nodes': unknown field"),
])
def test_a_bad_configuration_is_one_line_naming_the_field(tmp_path, changes, words):
    with pytest.raises(InputError, match=words) as error:
        load_cluster_config(config_file(tmp_path, **changes))
    assert "--cluster-config" in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("options, words", [
    (["--cluster", "slurm"], "needs --cluster-config"),
    (["--cluster-config", "CONFIG"], "is for --cluster"),
    (["--cluster", "slurm", "--cluster-config", "CONFIG", "--scheduler", "tcp://127.0.0.1:1"], "not both"),
    (["--cluster", "slurm", "--cluster-config", "BAD"], "field 'walltime'"),
])
def test_the_cli_refuses_bad_cluster_options_before_writing_anything(tmp_path, options, words):
    bad = config_file(tmp_path, walltime="soon").rename(tmp_path / "bad.yaml")
    good = config_file(tmp_path)
    options = [str({"CONFIG": good, "BAD": bad}.get(option, option)) for option in options]
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "sim.cli", "sweep", str(tiny_sweep(tmp_path)), "--out", str(out),
                             *options], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and words in result.stderr, result.stderr
    assert result.stderr.startswith("orgsim: error:") and "Traceback" not in result.stderr
    assert not out.exists()


def test_sweep_through_a_jobqueue_cluster_equals_the_local_sweep(tmp_path):
    """The whole --cluster path: the configuration read, the cluster started, its job script run (here as local
    processes: dask-jobqueue's local kind, as no batch system is installed), the runs done by its workers, and the
    cluster closed; the rows are those of the local sweep."""
    path = tiny_sweep(tmp_path)
    assert run_cli("sweep", path, "--out", tmp_path / "local", "--no-progress").returncode == 0
    config = config_file(tmp_path, cores=2, jobs=1, memory="2GB", walltime="00:10:00")
    result = run_cli("sweep", path, "--out", tmp_path / "jobs", "--cluster", "local", "--cluster-config", config,
                     "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "local: 1 job(s) of 2 worker(s) submitted" in result.stdout
    pd.testing.assert_frame_equal(read_runs(tmp_path / "local"), read_runs(tmp_path / "jobs"))
    assert read_manifest(tmp_path / "jobs")["sessions"][-1]["backend"].startswith("dask tcp://")


def test_every_command_that_takes_a_scheduler_takes_the_cluster_options():
    from sim.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    with_scheduler = {name for name, command in commands.items()
                      if any("--scheduler" in action.option_strings for action in command._actions)}
    assert with_scheduler >= {"sweep", "sensitivity", "compare", "validate", "discover", "calibrate", "report"}
    for name in with_scheduler:
        options = {option for action in commands[name]._actions for option in action.option_strings}
        assert {"--cluster", "--cluster-config"} <= options, name
