"""Experiments on the orgsim model: declarative sweeps, sensitivity analyses and what-if comparisons.

- `schema`: the experiment file format (experiments/*.yaml), validated with pydantic.
- `designs`: sample points for full factorial, Latin hypercube, Sobol and Morris designs (SALib).
- `batch`: the one parallel, resumable batch runner (joblib locally, Dask via ``scheduler``).
- `sensitivity`: Morris and Sobol indices with SALib, convergence, CSV and plots.
- `compare`: a scenario against variants over an ensemble of parameter sets.
- `claims`, `validate`: the evaluation's causal claims (experiments/claims.yaml) checked over an ensemble.
- `cli`: ``register(subparsers)`` adds ``sweep``, ``sensitivity``, ``compare`` and ``validate`` to orgsim's CLI.
"""
