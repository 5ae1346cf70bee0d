"""docs/ODD.md stays true to the code: every parameter and reporter is described there."""

from pathlib import Path

from sim.params import PARAMETERS
from sim.reporters import REPORTERS

ODD = (Path(__file__).resolve().parent.parent / "docs" / "ODD.md").read_text()


def test_every_parameter_is_in_the_odd():
    missing = [name for name in PARAMETERS if name not in ODD]
    assert not missing, f"parameters missing from docs/ODD.md: {missing}"


def test_every_reporter_is_in_the_odd():
    missing = [name for name in REPORTERS if f"`{name}`" not in ODD]
    assert not missing, f"reporters missing from docs/ODD.md: {missing}"


def test_every_parameter_has_meaning_unit_range_and_reason():
    for spec in PARAMETERS.values():
        assert spec.meaning and spec.unit and spec.reason
        assert spec.low <= spec.value <= spec.high, spec.name
