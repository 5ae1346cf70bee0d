"""orgsim: an agent-based model of continuous-improvement culture in NHS hospital trusts."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("orgsim")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+source"

from sim.memory import reuse_freed_memory  # noqa: E402

reuse_freed_memory()   # every entry point (CLI, workers, app, notebooks) makes weekly arrays from reused memory
