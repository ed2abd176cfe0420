"""The README's promises that code can check: its field table is the catalog's."""

import re
from pathlib import Path

from glaze_pipeline.core.model.fields import CATALOG

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_field_table_matches_the_catalog():
    rows = [line for line in README.read_text().splitlines() if re.match(r"^\| `\w+` \| (company|person) \|", line)]
    documented = [(r.split("|")[1].strip(" `"), r.split("|")[2].strip(), r.split("|")[3].strip()) for r in rows]
    assert documented == [(f.name, f.subject.value, f.description) for f in CATALOG.values()]


def test_readme_shows_the_two_commands_first():
    first_screen = "\n".join(README.read_text().splitlines()[:20])
    assert "make demo" in first_screen and "make test" in first_screen
