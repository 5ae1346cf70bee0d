"""The what-if page's levers as scenario fields: what the controls start from and the variant file they write.

A what-if is a scenario file with ``base:`` (scenarios/README: mappings merge, lists replace), so the variant
names only the lever groups the controls changed; ``orgsim compare`` then runs it against its base. A trust's
base is its scenario name; a readiness profile's base is the scenario its answers map to (sim/readiness/mapping.py),
written into the job's folder as ``scenarios/base.yaml``.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from sim.app.paths import SCENARIOS
from sim.scenario import Scenario, load_scenario

GROUPS = {                      # control group -> the scenario fields it edits
    "leadership": ("changes", "ceo_joins_l4l"),
    "culture": ("values_work_years_before", "values_work_during", "values_based_recruitment", "reflective_routines",
                "distributed_leadership"),
    "regulation": ("style", "episodes"),
    "programme": ("l4l_cohorts_per_year", "alt_places_per_year", "rpiws_per_year", "kpo_staff",
                  "value_stream_selection"),
}
GROUP_LABELS = {"leadership": "CEO changes", "culture": "Cultural work", "regulation": "Regulator",
                "programme": "Programme pace and value streams", "ensemble": "Ensemble", "base": "Start from"}
CEO_KINDS = ("permanent", "interim", "leave")
EPISODE_KINDS = ("special_measures_quality", "special_measures_finance", "regulatory_action")
SELECTIONS = ("auto", "top_down", "bottom_up")


def profile_path(name: str) -> Path:
    """An example profile of scenarios/readiness/ by name (names come from the page's list; checked anyway)."""
    path = SCENARIOS / "readiness" / f"{name}.yaml"
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name) or not path.is_file():
        raise ValueError(f"readiness profile '{name}' not found")
    return path


def write_profile_base(name: str, folder: Path) -> Path:
    """The scenario a readiness profile's answers map to (with its network survey's fields), as ``folder``/base.yaml."""
    from sim.readiness.mapping import write_arms
    from sim.readiness.network import network_fields, survey_measures
    from sim.readiness.profile import load_profile, survey_path

    path = profile_path(name)
    profile = load_profile(path)
    fields = network_fields(survey_measures(survey_path(profile, path))) if profile.network_survey else None
    [(_, base_path)] = write_arms(profile, [], folder, fields)
    return base_path


def lever_values(scenario: Scenario) -> dict:
    """The fields the controls edit, from a scenario, as plain values (dates as YYYY-MM-DD text)."""
    raw = scenario.model_dump(mode="json")
    values = {group: {field: raw[group][field] for field in fields} for group, fields in GROUPS.items()}
    values["leadership"]["changes"] = [{"date": c["date"], "kind": c["kind"]} for c in values["leadership"]["changes"]]
    values["regulation"]["episodes"] = [{"start": e["start"], "end": e["end"], "kind": e["kind"]}
                                        for e in values["regulation"]["episodes"]]
    return values


def variant_document(base_name: str, base_ref: str, base: dict, levers: dict) -> dict:
    """The what-if file: ``base_ref`` as its base and every lever group the controls changed from ``base``."""
    changed = {group: _blank_to_none(levers[group]) for group in GROUPS if levers[group] != base[group]}
    return {"name": f"{base_name}_variant", "description": "a what-if from the orgsim app", "base": base_ref,
            **changed}


def write_variant(document: dict, path: Path) -> Scenario:
    """Write the what-if file and load it as orgsim compare will (InputError naming the field if it is bad)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return load_scenario(str(path))


def changed_groups(document: dict) -> list[str]:
    return [group for group in GROUPS if group in document]


def groups_named(message: str) -> list[str]:
    """The control groups whose fields an error message names (``field 'culture.x'`` or ``leadership.changes[0]``);
    options of the run (--end, --posterior, --scale) belong to the ensemble group."""
    groups = [group for group in GROUPS if re.search(rf"(?<![\w.]){group}[.\[]", message)]
    if re.search(r"--(end|posterior|scale|max-sets|replicates|seed)\b", message):
        groups.append("ensemble")
    return groups


def _blank_to_none(values: dict) -> dict:
    """Blank text fields mean none (a CEO who never joins L4L, no values work during the run)."""
    return {key: (None if value == "" else value) for key, value in values.items()}
