"""``orgsim readiness PROFILE``: run the organisation over the parameter sets and write a report for a board.

The report is built once as a list of sections (paragraphs, tables, figures) and written three ways:
``report.html`` (one file, figures embedded), ``report.pdf`` (printable, A4, via matplotlib's PdfPages) and
``report.md`` (with the figures as PNG files beside it). Beside them: ``effects.csv`` (every lever and risk),
``trajectory.csv`` (the bands), ``ratings.csv``, ``dimensions.csv``, ``nearest.csv``, ``manifest.json``, the
scenarios run (``scenarios/``: the base and one what-if per lever and risk, each runnable with ``orgsim run``)
and the runs (``runs/``: re-running the same command resumes them).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sim.errors import InputError
from sim.experiments.compare import load_parameter_sets
from sim.experiments.compare import parameter_source as default_source
from sim.readiness import analysis, figures
from sim.readiness.dimensions import model_reading, readiness_dimensions
from sim.readiness.mapping import LEVERS, RISKS, Calendar, build_scenario
from sim.readiness.nearest import FEATURES, distances, largest_differences
from sim.readiness.network import compute_reference_surveys, network_fields, read_reference_surveys, survey_measures
from sim.readiness.profile import Profile, load_profile, survey_path
from sim.runner import git_commit, write_json
from sim.scenario import RATINGS

RATING_WORDS = {"inadequate": "inadequate", "requires_improvement": "requires improvement", "good": "good",
                "outstanding": "outstanding"}


@dataclass
class Options:
    posterior: str | None = "calibration/posterior_main.csv"    # None: the documented defaults
    sets: int = 20
    replicates: int = 2
    scale: float = 0.25
    seed: int = 20150701
    workers: int = 1
    outcome: str = "quality_final"
    survey_run: Path | None = None
    progress: bool = True
    levers: tuple = LEVERS + RISKS
    keep_in_place: bool = False          # run levers already in place too (tests: a zero-size lever)


@dataclass
class Section:
    title: str
    blocks: list = field(default_factory=list)     # ("p", text) | ("table", header, rows) | ("figure", name, caption)

    def p(self, text: str) -> Section:
        self.blocks.append(("p", text))
        return self

    def table(self, header: list[str], rows: list[list]) -> Section:
        self.blocks.append(("table", header, [[str(cell) for cell in row] for row in rows]))
        return self

    def figure(self, name: str, caption: str) -> Section:
        self.blocks.append(("figure", name, caption))
        return self


def make_report(profile_file: Path, out_dir: Path, options: Options) -> Path:
    """Run everything and write the report into ``out_dir``; return the HTML report's path."""
    started = time.perf_counter()
    analysis.check_outcome(options.outcome)
    profile = load_profile(profile_file)
    sets = load_parameter_sets(options.posterior, options.sets, options.seed)
    own_survey = survey_measures(survey_path(profile, profile_file)) if profile.network_survey else None
    fields = network_fields(own_survey) if own_survey else None
    scenario = build_scenario(profile, fields, str(profile_file))
    references = (read_reference_surveys(options.survey_run) if options.survey_run else None)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    arms, skipped = analysis.plan_arms(profile, out_dir / "scenarios", options.levers, fields, options.keep_in_place)
    # the defaults are one parameter set: it gets the replicates that the sets would have had, as many runs
    replicates = options.replicates * (options.sets if options.posterior is None else 1)
    specs = analysis.arm_specs(arms, sets, replicates, options.seed, options.scale)
    source = parameter_source(sets, options.posterior)
    plan = (f"{len(specs)} runs = {source} x {replicates} replicate(s) x {len(arms)} arm(s) (the plan and "
            f"{len(arms) - 1} lever(s) and risk(s)), at scale {options.scale:g}")
    if options.progress:
        print(f"readiness of {profile.organisation}: {plan}", flush=True)
    result = analysis.run_arms(specs, out_dir / "runs", options.workers, options.progress,
                               {"kind": "orgsim readiness", "profile": str(profile_file), "plan": plan})
    params = {k: float(v) for k, v in sets.drop(columns="weight").iloc[0].items() if "." not in k}
    if references is None:
        if options.progress:
            print("the five trusts' December 2018 surveys: a small full-scale run to December 2018", flush=True)
        references = compute_reference_surveys(params, options.workers)
    reading = model_reading(profile, scenario, params)
    data = ReportData(
        profile=profile, profile_file=Path(profile_file), scenario_name=scenario.name, options=options,
        source=source, plan=plan, reading=reading, dimensions=readiness_dimensions(profile, reading),
        own_survey=own_survey, fields=fields, references=references, nearest=distances(scenario, params),
        bands=analysis.trajectory_bands(result.series, result.runs), ratings=analysis.rating_probabilities(result.runs),
        effects=analysis.lever_effects(result.runs, arms, options.outcome, seed=options.seed), skipped=skipped,
        runs=len(result.runs))
    path = write_report(data, out_dir)
    write_json(out_dir / "manifest.json", {
        "kind": "orgsim readiness report", "command": " ".join(["orgsim", *sys.argv[1:]]), "created": _now(), "git_commit": git_commit(),
        "profile_file": str(profile_file), "profile": profile.model_dump(mode="json"),
        "scenario": "scenarios/base.yaml", "arms": [{"name": a.name, "kind": a.kind, "step": a.step,
                                                     "scenario": f"scenarios/{a.path.name}"} for a in arms],
        "levers_not_run": {lever.name: why for lever, why in skipped},
        "network_survey": {"measures": own_survey, "network_fields": fields} if own_survey else None,
        "parameters": source, "posterior": options.posterior, "sets": len(sets), "replicates": replicates,
        "scale": options.scale, "seed": options.seed, "seed_rule": "np.random.SeedSequence(seed, spawn_key=(set x "
        "replicates + replicate,)), the same in every arm (common random numbers)", "outcome": options.outcome,
        "survey_reference": str(options.survey_run) if options.survey_run else "computed: the five trusts at scale 1 "
        "to 2018-12-08, seed 1, the first parameter set", "runs": len(result.runs), "workers": options.workers,
        "seconds": round(time.perf_counter() - started, 1)})
    if options.progress:
        print_ranking(data)
        print(f"wrote {path}, {path.with_suffix('.pdf').name}, {path.with_suffix('.md').name} "
              f"({time.perf_counter() - started:.0f} s)")
    return path


def parameter_source(sets: pd.DataFrame, posterior: str | None) -> str:
    """Where the parameter sets come from, in words (all of a file's sets by their weights, or drawn by weight)."""
    if posterior is None:
        return default_source(sets, None, None)
    available = len(load_parameter_sets(posterior))
    how = "all, by their weights" if len(sets) >= available else f"drawn by weight from its {available}"
    return f"{len(sets)} parameter set(s) of {Path(posterior).name} ({how})"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class ReportData:
    profile: Profile
    profile_file: Path
    scenario_name: str
    options: Options
    source: str
    plan: str
    reading: dict
    dimensions: list
    own_survey: dict | None
    fields: dict | None
    references: dict
    nearest: pd.DataFrame
    bands: pd.DataFrame
    ratings: pd.DataFrame
    effects: pd.DataFrame
    skipped: list
    runs: int

    @property
    def calendar(self) -> Calendar:
        return Calendar(self.profile.programme_start)

    def at_year(self, variable: str, years: float) -> pd.Series:
        part = self.bands[self.bands["variable"] == variable]
        return part.iloc[(part["years"] - years).abs().argmin()]

    @property
    def uncalibrated(self) -> bool:
        return self.options.posterior is None


def print_ranking(data: ReportData) -> None:
    label = analysis.OUTCOMES[data.options.outcome][0]
    print(f"which lever first, by its effect on {label}:")
    for _, row in data.effects.iterrows():
        print(f"  {row['kind']:5} {row['rank']:2d}. {row['label']:34} {row['difference']:+.3g} "
              f"[{row['ci_low']:+.3g}, {row['ci_high']:+.3g}]" + ("" if row["clear"] else "  (cannot be told from none)"))


# -- content -----------------------------------------------------------------------------------------------
def _range(row: pd.Series, form: str = "{:.0f}", factor: float = 1.0, unit: str = "") -> str:
    """``median unit (90% of runs: low-high)``."""
    value = lambda q: form.format(row[q] * factor)  # noqa: E731
    return f"{value('median')}{unit} (90% of runs: {value('q05')}-{value('q95')}{unit.strip() if unit == '%' else ''})"


def _rating_line(ratings: pd.DataFrame, year: int) -> str:
    row = ratings.set_index("year").loc[year]
    parts = [f"{RATING_WORDS[r]} {row[r]:.0%}" for r in sorted(RATINGS, key=lambda r: -row[r]) if row[r] >= 0.005]
    return ", ".join(parts)


def _lower_first(text: str) -> str:
    """'A slower RPIW pace' -> 'a slower RPIW pace' (acronyms kept)."""
    return text[:1].lower() + text[1:] if text[1:2].islower() or text[1:2] == " " else text


def _signed(value: float) -> str:
    return f"{value:+.3g}"


def sections(data: ReportData) -> list[Section]:
    profile, horizon = data.profile, data.profile.horizon_years
    outcome_label, _ = analysis.OUTCOMES[data.options.outcome]
    levers = data.effects[data.effects["kind"] == "lever"]
    risks = data.effects[data.effects["kind"] == "risk"]
    nearest = data.nearest.iloc[1]
    second = data.nearest.iloc[2]
    out = []

    summary = Section("Summary")
    if data.uncalibrated:
        summary.p("Parameters: the model's documented defaults, not a calibration. Read the numbers as an "
                  "illustration of the mechanisms; regenerate this report with a calibrated posterior (--posterior).")
    middle = min(3, horizon)
    summary.p(
        f"Over the {horizon} years after a programme start in {profile.programme_start:%B %Y}, the model expects "
        f"{_range(data.at_year('l4l_participants', middle), unit=' staff')} to have taken part in Lean for Leaders by "
        f"year {middle} and {_range(data.at_year('l4l_participants', horizon))} by year {horizon}; "
        f"{_range(data.at_year('practising_share', horizon), '{:.1f}', 100, '%')} of staff practising the method by "
        f"year {horizon}; {_range(data.at_year('rpiws', horizon), unit=' RPIWs')} held. If inspected in year {horizon}: "
        f"{_rating_line(data.ratings, horizon)} of runs.")
    reading = data.reading
    if reading["kpo_fte_available"] < reading["kpo_fte_needed"]:
        summary.p(f"Your improvement team's time at the start ({reading['kpo_fte_available']:.1f} FTE, after what "
                  f"regulatory pressure diverts) covers {reading['kpo_fte_available'] / reading['kpo_fte_needed']:.0%} "
                  f"of what the plan needs ({reading['kpo_fte_needed']:.1f} FTE): in the model no L4L cohort, ALT intake "
                  "or RPIW starts without the team's time, so the plan goes as fast as the team allows.")
    helpful = levers[levers["gain"] > 0].head(3)
    if len(helpful):
        summary.p(f"Which lever first, by its effect on the {outcome_label}: " + "; ".join(
            f"{row['rank']}. {_lower_first(row['label'])} ({_signed(row['difference'])}, 95% interval "
            f"{_signed(row['ci_low'])} to {_signed(row['ci_high'])}{'' if row['clear'] else ': cannot be told from none'})"
            for _, row in helpful.iterrows()) + ".")
    elif len(levers):
        summary.p(f"None of the levers tried improves the {outcome_label} (the table below gives each one's effect).")
    for _, risk in risks.iterrows():    # most harmful first; a positive one is what you would gain if it went your way
        effect = (f"{_signed(risk['difference'])} (95% interval {_signed(risk['ci_low'])} to "
                  f"{_signed(risk['ci_high'])}{'' if risk['clear'] else ': cannot be told from none'})")
        summary.p(f"Outside your control, {_lower_first(risk['label'])}: if {risk['step']}, {effect}." if risk["gain"] >= 0
                  else f"A risk outside your control, {_lower_first(risk['label'])}: if {risk['step']}, {effect}.")
    summary.p(f"Nearest of the five trusts at their start: {nearest['organisation']} (distance {nearest['distance']:.2f}; "
              f"next {second['organisation']}, {second['distance']:.2f}).")
    summary.p(f"Runs: {data.plan}; {data.runs} finished. Each lever was run with the same parameter sets and random "
              "numbers as the plan, so the differences are the levers' effects, not chance between runs.")
    out.append(summary)

    readiness = Section("Readiness profile")
    readiness.p("Your answers placed on the dimensions of the instruments leaders use (ORIC, MUSIQ, NHS IMPACT, "
                "i-PARIHS). These are not the instruments' validated scores: each is the mean of a few components "
                "derived from your answers (0-1 each, shown with where they come from). The trajectory below comes "
                "from the model, not from these scores.")
    readiness.figure("profile", "Readiness on the instruments' dimensions (0-100).")
    readiness.table(["instrument", "dimension", "score", "level", "how it was derived"],
                    [[d.instrument, d.name, f"{d.score:.0f}", d.level, d.derivation] for d in data.dimensions])
    trusts_culture = ", ".join(f"{row['organisation']} {row['culture_index']:.2f}"
                               for _, row in data.nearest.iloc[1:].iterrows())
    start_engagement = data.at_year("engagement_mean", 0)["median"]
    readiness.p(
        f"What the model reads from your answers at the start: culture index {reading['culture_index']:.2f} (0-1; the "
        f"five trusts at their start: {trusts_culture}); chief executive {reading['ceo_years_in_post']:.1f} years in "
        f"post; regulatory pressure {reading['pressure']:.2g} (0-1) and special-measures support "
        f"{reading['turnaround_support']:.0f}; {reading['kpo_fte_available']:.1f} FTE of improvement-team time for "
        f"{reading['kpo_fte_needed']:.1f} FTE of planned work in steady state; value streams "
        f"{reading['value_streams'].replace('_', '-')}"
        + (" (the model's choice from the culture index, as the five trusts chose)" if
           reading["value_streams_chosen_by_model"] else " (your choice)")
        + f"; mean staff engagement {start_engagement:.2f} (0-1, the model's, median over runs)."
        + (f" Your staff engagement score ({profile.staff_engagement:g}) is not a model input: engagement emerges from "
           "culture, leadership and pressure; it enters the readiness profile only." if profile.staff_engagement
           is not None else ""))
    out.append(readiness)

    network = Section("Your network")
    if data.own_survey:
        own = data.own_survey
        network.p(f"Your survey: {own['respondents']} respondents named {own['ties']} people "
                  f"({own['names_per_respondent']:.1f} each); {own['arc_reciprocity']:.0%} of ties returned; "
                  f"{own['isolated_share']:.0%} of respondents outside the largest connected group; "
                  f"{own['brokerage_simple_share']:.0%} of brokerage one-way ('messengers'). It sets the model's "
                  f"starting network: {data.fields['team_ties']} ties to teammates each (people named per respondent, "
                  f"rounded) and {data.fields['cross_team_ties']:.2f} ties across teams on average (1 for a network "
                  "with a fifth cut off, like UHCW's; fewer the more are cut off). Reciprocity is not an input: in the "
                  "model it grows with the culture.")
    else:
        network.p("No network survey was given: the model starts from its default network (4 ties to teammates "
                  "and 1 across teams on average each). A survey of who talks to whom about improvement "
                  "(question network_survey) would set it and place your network against the five trusts'.")
    network.figure("network", "Survey measures: yours (star) against the five trusts' emulated December 2018 surveys "
                              "(the model's, at full scale; the evaluation published only qualitative findings).")
    out.append(network)

    trajectory = Section(f"The likely trajectory over {horizon} years")
    trajectory.p("Median and the ranges where 50% and 90% of runs fall, over the parameter sets and chance. "
                 "Year 0 is the programme start; the two years before it are the model's history of your "
                 "organisation (chief executive, values work, regulation).")
    trajectory.figure("trajectory", "L4L diffusion, staff practising, RPIWs and the quality index.")
    trajectory.table(["year", "L4L participants", "L4L complete", "staff practising (%)", "RPIWs held",
                      "most likely rating (share)"],
                     [[year, _range(data.at_year("l4l_participants", year)), _range(data.at_year("l4l_complete", year)),
                       _range(data.at_year("practising_share", year), "{:.1f}", 100), _range(data.at_year("rpiws", year)),
                       _most_likely(data.ratings, year)] for year in range(1, horizon + 1)])
    trajectory.figure("contributions", "Each mechanism's contribution to the quality index since the start "
                                       "(ODD 7.8): engagement, practice, process gains, turnaround support, "
                                       "leadership instability, the NHS-wide decline, settling towards the "
                                       "reference level, and noise.")
    trajectory.figure("ratings", "Probability of each CQC rating if inspected at the start and on each anniversary.")
    out.append(trajectory)

    lever_section = Section("Which lever first")
    lever_section.p(f"Each lever you control, changed by the step stated, run against the plan as you described it, "
                    f"ranked by its effect on the {outcome_label}. A lever whose 95% interval includes zero cannot "
                    "be told from no effect with this many runs; levers interact, and each was run alone.")
    lever_section.figure("levers", "Levers (ranked) and, apart, the risks you do not control.")
    lever_section.table(["rank", "lever", "step", "effect", "95% interval", "90% of runs", "good or better at the end"],
                        [_effect_row(row) for _, row in levers.iterrows()])
    if data.skipped:
        lever_section.p("Not run, already in place: " + ", ".join(_lower_first(lever.label) for lever, _ in data.skipped)
                        + ".")
    out.append(lever_section)

    risk_section = Section("What you do not control")
    risk_section.table(["rank", "risk", "what happens", "effect", "95% interval", "90% of runs",
                        "good or better at the end"], [_effect_row(row) for _, row in risks.iterrows()])
    risk_section.p(f"Good or better at the horizon's end as planned: {levers['base_good_or_better_share'].iloc[0]:.0%} of "
                   "runs." if len(levers) else "")
    out.append(risk_section)

    similar = Section("The nearest of the five trusts")
    differences = largest_differences(data.nearest, nearest["organisation"])
    observed = _published_ratings(nearest["organisation"])
    similar.p(f"At their programme start (July 2015) the trust most like yours was {nearest['organisation']} "
              f"(distance {nearest['distance']:.2f}). You differ most in: {'; '.join(differences) or 'nothing'}. "
              f"{nearest['organisation']}'s published CQC ratings: {observed}. The distance is the Euclidean distance "
              "over these inputs, each divided by the range shown in its heading (sim/readiness/nearest.py).")
    similar.table(["organisation", *[f"{f.label} (/{f.scale:g})" for f in FEATURES], "distance"],
                  [[row["organisation"], *[f"{row[f.name]:.2f}" for f in FEATURES], f"{row['distance']:.2f}"]
                   for _, row in data.nearest.iterrows()])
    out.append(similar)

    limits = Section("The model's limits, in plain words")
    for text in LIMITS:
        limits.p(text.format(scale=data.options.scale, source=data.source))
    out.append(limits)

    method = Section("How this report was made")
    method.p(f"Profile: {data.profile_file.name}; every answer's rule is in sim/readiness/mapping.py, the scenario run "
             "is scenarios/base.yaml and each lever's is a what-if beside it (orgsim run runs any of them). "
             f"{data.plan}; seed {data.options.seed}. Command: orgsim readiness {data.profile_file} "
             f"--sets {data.options.sets} --replicates {data.options.replicates} --scale {data.options.scale:g} "
             f"--outcome {data.options.outcome}" + ("" if data.options.posterior else " --posterior defaults") + ".")
    out.append(method)
    return out


LIMITS = (
    "It compares options; it does not forecast your rating. The bands show the spread over the parameter sets "
    "({source}) and chance; your organisation will follow one path, and things the model leaves out will move it.",
    "It learned from five trusts in 2013-2021 (the NHS-Virginia Mason partnership). Your organisation is run on that "
    "calendar, with the programme starting in July 2015, so that the NHS-wide decline and every behavioural "
    "parameter act as they were calibrated; COVID-19 is left out. A very different organisation (a community or "
    "mental health trust, or one much smaller or larger than 4,200-17,500 staff) is outside what it has seen.",
    "It leaves out money, workforce shortages beyond turnover, particular services and pathways, other improvement "
    "methods, mergers, and local politics. It does not cost the levers: a larger team or more cohorts cost money "
    "the model does not count.",
    "The readiness scores translate your answers onto familiar dimensions; they are not the validated instruments, "
    "and your staff engagement score is not a model input.",
    "Each lever is a stylised step (stated beside it) run alone; doing two at once need not add up. A lever whose "
    "interval includes zero may still matter: more runs would tell.",
    "The runs simulate a fraction {scale:g} of your staff (counts are reported at full size). Below a quarter, L4L "
    "counts and the share practising run high (docs/experiments.md, 'Which outputs are safe at which scale'); the "
    "lever ranking was checked against full scale (benchmarks/bench_readiness.py).",
)


def _most_likely(ratings: pd.DataFrame, year: int) -> str:
    row = ratings.set_index("year").loc[year]
    rating = max(RATINGS, key=lambda r: row[r])
    return f"{RATING_WORDS[rating]} ({row[rating]:.0%})"


def _effect_row(row: pd.Series) -> list:
    return [row["rank"], row["label"], row["step"], _signed(row["difference"]),
            f"{_signed(row['ci_low'])} to {_signed(row['ci_high'])}",
            f"{_signed(row['interval_low'])} to {_signed(row['interval_high'])}", f"{row['good_or_better_share']:.0%}"]


def _published_ratings(trust: str) -> str:
    from sim.plots import observations

    cqc = observations([trust])[trust]["cqc"]
    return ", ".join(f"{year} {RATING_WORDS[r]}" for year, r in sorted(cqc.items())) or "none published"


# -- writing -----------------------------------------------------------------------------------------------
def draw_figures(data: ReportData) -> dict:
    base_mean = float(data.effects["base_mean"].iloc[0]) if len(data.effects) else float("nan")
    return {
        "profile": figures.plot_dimensions(data.dimensions),
        "network": figures.plot_network(data.own_survey, data.references, data.profile.organisation),
        "trajectory": figures.plot_trajectory(data.bands, data.profile.organisation),
        "contributions": figures.plot_contributions(data.bands),
        "ratings": figures.plot_ratings(data.ratings),
        **({"levers": figures.plot_levers(data.effects, analysis.OUTCOMES[data.options.outcome][0], base_mean)}
           if len(data.effects) else {}),
    }


def write_report(data: ReportData, out_dir: Path) -> Path:
    """report.html, report.pdf, report.md, the figures as PNG and the tables as CSV in ``out_dir``."""
    from matplotlib.backends.backend_pdf import PdfPages

    from sim.experiments.figures import pyplot

    content = sections(data)
    drawn = draw_figures(data)
    pngs = {}
    for name, figure in drawn.items():
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        pngs[name] = buffer.getvalue()
        _write_bytes(out_dir / f"{name}.png", pngs[name])
    title = f"Readiness for a Lean improvement programme: {data.profile.organisation}"
    subtitle = (f"orgsim readiness report, {dt.date.today():%d %B %Y}; programme start {data.profile.programme_start:%B %Y}, "
                f"{data.profile.staff:,} staff; parameters: {data.source}")
    _write_text(out_dir / "report.html", to_html(title, subtitle, content, pngs))
    _write_text(out_dir / "report.md", to_markdown(title, subtitle, content))
    pdf = out_dir / "report.pdf"
    temporary = pdf.with_name(pdf.name + ".tmp")
    with PdfPages(temporary, metadata={"Title": title, "Creator": "orgsim readiness"}) as pages:
        figure_pages = set(map(id, drawn.values()))
        for page in to_pages(title, subtitle, content, drawn):
            pages.savefig(page, bbox_inches="tight" if id(page) in figure_pages else None)   # text pages stay A4
            if id(page) not in figure_pages:
                pyplot().close(page)
    temporary.replace(pdf)
    for figure in drawn.values():
        pyplot().close(figure)
    data.effects.to_csv(out_dir / "effects.csv", index=False, float_format="%.6g")
    data.bands.to_csv(out_dir / "trajectory.csv", index=False, float_format="%.6g")
    data.ratings.to_csv(out_dir / "ratings.csv", index=False, float_format="%.4g")
    data.nearest.to_csv(out_dir / "nearest.csv", index=False, float_format="%.4g")
    pd.DataFrame([{"instrument": d.instrument, "dimension": d.name, "score": round(d.score, 1), "level": d.level,
                   "derivation": d.derivation} for d in data.dimensions]).to_csv(out_dir / "dimensions.csv", index=False)
    return out_dir / "report.html"


def _write_bytes(path: Path, payload: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(payload)
    temporary.replace(path)


def _write_text(path: Path, text: str) -> None:
    _write_bytes(path, text.encode())


STYLE = """body{font-family:system-ui,Segoe UI,Helvetica,Arial,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em;margin:.8em 0}td,th{border:1px solid #ccc;padding:.25em .5em;
vertical-align:top;text-align:left}th{background:#f2f2f2}img{max-width:100%}figure{margin:1em 0}
figcaption{font-size:.85em;color:#555}.sub{color:#555}@media print{h2{page-break-before:auto}}"""


def to_html(title: str, subtitle: str, content: list[Section], pngs: dict) -> str:
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1><p class='sub'>{html.escape(subtitle)}</p>"]
    for section in content:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        for block in section.blocks:
            if block[0] == "p" and block[1]:
                parts.append(f"<p>{html.escape(block[1])}</p>")
            elif block[0] == "table":
                head = "".join(f"<th>{html.escape(h)}</th>" for h in block[1])
                body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in block[2])
                parts.append(f"<table><tr>{head}</tr>{body}</table>")
            elif block[0] == "figure" and block[1] in pngs:
                encoded = base64.b64encode(pngs[block[1]]).decode()
                parts.append(f"<figure><img alt='{html.escape(block[2])}' src='data:image/png;base64,{encoded}'>"
                             f"<figcaption>{html.escape(block[2])}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts)


def to_markdown(title: str, subtitle: str, content: list[Section]) -> str:
    lines = [f"# {title}", "", f"*{subtitle}*", ""]
    for section in content:
        lines += [f"## {section.title}", ""]
        for block in section.blocks:
            if block[0] == "p" and block[1]:
                lines += [block[1], ""]
            elif block[0] == "table":
                cell = lambda text: text.replace("|", "\\|")  # noqa: E731
                lines += ["| " + " | ".join(map(cell, block[1])) + " |", "|" + "---|" * len(block[1])]
                lines += ["| " + " | ".join(map(cell, row)) + " |" for row in block[2]] + [""]
            elif block[0] == "figure":
                lines += [f"![{block[2]}]({block[1]}.png)", "", f"*{block[2]}*", ""]
    return "\n".join(lines)


A4 = (8.27, 11.69)
WRAP = 105          # characters per line of body text on an A4 page at 9 pt


class _Pages:
    """Text flowed onto A4 pages of matplotlib figures (a new page when one is full)."""

    def __init__(self):
        self.pages, self.y = [], 0.0
        self._new()

    def _new(self):
        from sim.experiments.figures import pyplot

        self.figure = pyplot().figure(figsize=A4)
        self.pages.append(self.figure)
        self.y = 0.95

    def text(self, text: str, size: float = 9, weight: str = "normal", width: int = WRAP, gap: float = 0.006,
             family: str = "sans-serif"):
        for line in textwrap.wrap(text, width) or [""]:
            step = size / 72 / A4[1] * 1.35
            if self.y - step < 0.04:
                self._new()
            self.figure.text(0.06, self.y, line, fontsize=size, weight=weight, va="top", family=family)
            self.y -= step
        self.y -= gap


def to_pages(title: str, subtitle: str, content: list[Section], drawn: dict) -> list:
    pages = _Pages()
    pages.text(title, size=15, weight="bold", width=70)
    pages.text(subtitle, size=8, width=130)
    later = []
    for section in content:
        pages.text(section.title, size=12, weight="bold", gap=0.004)
        for block in section.blocks:
            if block[0] == "p" and block[1]:
                pages.text(block[1])
            elif block[0] == "table":
                pages.text(" | ".join(block[1]), size=7.5, weight="bold", width=135)
                for row in block[2]:
                    pages.text(" | ".join(row), size=7.5, width=135, gap=0.002)
                pages.y -= 0.006
            elif block[0] == "figure" and block[1] in drawn:
                pages.text(f"[Figure: {block[2]} See the figure pages.]", size=8)
                later.append(drawn[block[1]])
    return [page for page in pages.pages if page.texts] + later


def load_and_check(profile_file: Path, options: Options) -> Profile:
    """Validate everything a report needs before any run: the profile, the survey, the outcome, the parameter sets."""
    analysis.check_outcome(options.outcome)
    profile = load_profile(profile_file)
    if profile.network_survey:
        survey_measures(survey_path(profile, profile_file))
    try:
        load_parameter_sets(options.posterior, options.sets, options.seed)
    except InputError as error:
        raise InputError(f"--posterior: {error} (--posterior defaults runs at the documented default parameters, "
                         "uncalibrated)") from None
    if options.survey_run:
        read_reference_surveys(options.survey_run)
    if not 0 < options.scale <= 1:
        raise InputError(f"--scale {options.scale}: give a fraction in (0, 1]")
    return profile
