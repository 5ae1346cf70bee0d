"""The orgsim web app: four pages under one bar (Solara routes). ``orgsim app`` serves this module.

The pages import the model and its tools (sim/...), never the reverse, as Mesa's examples keep ``app.py``
apart from ``model.py``.
"""

from __future__ import annotations

import solara
import solara.lab

from sim.app import live, readiness, results, whatif

@solara.component
def Layout(children=[]):      # noqa: B006 (Solara's signature for the app's layout)
    """The bar with one tab per page, named by its label (Solara's own tabs show the paths)."""
    route, siblings = solara.use_route()
    router = solara.use_router()
    index = siblings.index(route) if route in siblings else 0
    with solara.AppLayout(title="orgsim", navigation=True, children=children):
        with solara.AppBar():
            with solara.lab.Tabs(value=index, align="center",
                                 on_value=lambda i: router.push(solara.resolve_path(siblings[i], level=0))):
                for page in siblings:
                    solara.lab.Tab(page.label)


routes = [                      # the root route's layout wraps every page
    solara.Route(path="/", component=whatif.Page, label="What-if", layout=Layout),
    solara.Route(path="readiness", component=readiness.Page, label="Readiness"),
    solara.Route(path="live", component=live.Page, label="One run, live"),
    solara.Route(path="results", component=results.Page, label="Results"),
]
