import solara

@solara.component
def Page():
    solara.Markdown("# results")
