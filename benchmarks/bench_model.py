"""Speed of the simulation core against Mesa's own VirusOnNetwork, in one process.

    .venv/bin/python benchmarks/bench_model.py [--scale 1.0] [--repeats 3] [--virus-steps 20]

(a) orgsim: the five trusts at --scale (1.0: 42,300 staff; 0.1, calibration size: 4,230), ~400 weekly
    steps each; set-up (model
    construction: staff, network, agents) timed apart from stepping. Median of --repeats runs.
(b) mesa.examples VirusOnNetwork with the same number of agents and its default settings
    (average degree 3), its G(n, p) graph drawn with networkx's fast_gnp_random_graph (the same
    random-graph model as its erdos_renyi_graph, in O(n + m) instead of O(n^2)) and with no spring
    layout (layout=None). Stepped --virus-steps steps (rate is per agent-step).
Prints agent-steps per second for both, their ratio, set-up times and peak memory (max RSS).
Quote the figures as medians from one run; the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import functools
import resource
import statistics
import time
import types
from unittest import mock

import networkx as nx
import numpy as np

from sim.model import TrustModel
from sim.params import default_params
from sim.runner import TRUSTS, trust_seed
from sim.scenario import load_scenario


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_orgsim(seed: int, scale: float) -> dict:
    params = default_params()
    setup = steps = agent_steps = 0.0
    for name in TRUSTS:
        scenario = load_scenario(name)
        t0 = time.perf_counter()
        model = TrustModel(scenario, params, rng=np.random.default_rng(trust_seed(seed, name)), scale=scale)
        t1 = time.perf_counter()
        model.run()
        t2 = time.perf_counter()
        setup += t1 - t0
        steps += t2 - t1
        agent_steps += model.staff.n * model.ctx.weeks
    return {"setup_s": setup, "step_s": steps, "agent_steps": agent_steps}


def time_virus(n_agents: int, n_steps: int, seed: int) -> dict:
    from mesa.discrete_space import Network
    from mesa.examples.basic.virus_on_network import model as virus_module

    fast_nx = types.SimpleNamespace(erdos_renyi_graph=lambda n, p: nx.fast_gnp_random_graph(n, p, seed=seed))
    with mock.patch.object(virus_module, "nx", fast_nx), \
            mock.patch.object(virus_module, "Network", functools.partial(Network, layout=None)):
        t0 = time.perf_counter()
        model = virus_module.VirusOnNetwork(num_nodes=n_agents, rng=seed)
        t1 = time.perf_counter()
        for _ in range(n_steps):
            model.step()
        t2 = time.perf_counter()
    return {"setup_s": t1 - t0, "step_s": t2 - t1, "agent_steps": n_agents * n_steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--virus-steps", type=int, default=20)
    args = parser.parse_args()

    time_orgsim(0, args.scale)      # warm: compiled kernels loaded from their cache
    runs = [time_orgsim(seed, args.scale) for seed in range(1, args.repeats + 1)]
    ours = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    ours_rss = peak_rss_mb()
    n_agents = sum(max(int(round(load_scenario(t).staff * args.scale)), 10) for t in TRUSTS)
    virus = time_virus(n_agents, args.virus_steps, seed=1)
    ours_rate = ours["agent_steps"] / ours["step_s"]
    virus_rate = virus["agent_steps"] / virus["step_s"]
    print(f"orgsim, five trusts at scale {args.scale}, {n_agents} staff, median of {args.repeats} runs:")
    print(f"  set-up {ours['setup_s']:.2f} s, stepping {ours['step_s']:.2f} s, total {ours['setup_s'] + ours['step_s']:.2f} s")
    print(f"  {ours['agent_steps']:.3g} agent-steps, {ours_rate:,.0f} agent-steps/s; peak RSS so far {ours_rss:.0f} MB")
    print(f"VirusOnNetwork, {n_agents} agents, {args.virus_steps} steps:")
    print(f"  set-up {virus['setup_s']:.2f} s, stepping {virus['step_s']:.2f} s, {virus_rate:,.0f} agent-steps/s")
    print(f"ratio orgsim / VirusOnNetwork agent-steps per second: {ours_rate / virus_rate:.1f}x")
    print(f"peak RSS of this process: {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
