"""The README and docs/ stand on their own: every relative link resolves inside the repository."""

import re

import pytest
from conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_resolves_inside_the_repository(page):
    targets = [target.split("#")[0] for target in LINK.findall(page.read_text()) if "://" not in target]
    broken = [
        target
        for target in targets
        if target and not ((page.parent / target).exists() and ROOT in (page.parent / target).resolve().parents)
    ]
    assert broken == []
