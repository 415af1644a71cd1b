"""The reference tables are committed into the pages, and the committed copies are current.

A reader browsing ``docs/`` in the repository gets the same hook and rule tables as the built
site: ``docs/_hooks.py`` writes them between ``<!-- generate: NAME -->`` and
``<!-- end generate -->``, and refreshes them on every build, so a stale copy would only show
in the repository. These tests fail when one is stale, naming the command that rewrites it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from docs import _hooks

from codat_webhooks.event_types import EVENTS
from codat_webhooks.rules import RULES

from .test_docs import hookspec_names

DOCS = Path(__file__).resolve().parent.parent / "docs"
REGENERATE = "scripts/generate-docs"


def test_committed_tables_are_current() -> None:
    stale = [str(page.relative_to(DOCS.parent)) for page in _hooks.stale_pages()]
    assert not stale, f"generated tables are stale in {stale}: run {REGENERATE} and commit"


def test_hooks_page_lists_every_hook_in_the_repository() -> None:
    text = (DOCS / "reference" / "hooks.md").read_text(encoding="utf-8")
    missing = [name for name in hookspec_names() if f"### `{name}`" not in text]
    assert not missing, f"run {REGENERATE}: hooks missing from docs/reference/hooks.md: {missing}"


def test_rules_page_lists_every_type_in_the_repository() -> None:
    text = (DOCS / "reference" / "rules.md").read_text(encoding="utf-8")
    for rule in RULES:
        assert f"{{ #{rule.hook} }}" in text, rule.type
        for spelling in rule.spellings:
            assert f"`{spelling}`" in text, spelling
    for spec in EVENTS:
        assert f"### {spec.type.value} {{ #{spec.hook} }}" in text, spec.type


@pytest.mark.parametrize("page", ["reference/hooks.md", "reference/rules.md", "migration.md"])
def test_the_build_renders_the_committed_page(page: str) -> None:
    text = (DOCS / page).read_text(encoding="utf-8")
    assert _hooks.END in text
    assert _hooks.expand(text, page) == text


def test_a_committed_table_cannot_go_back_to_a_bare_marker() -> None:
    with pytest.raises(ValueError, match=REGENERATE):
        _hooks.expand("<!-- generate: rules-table -->\n", "page.md")


def test_a_copied_file_is_not_committed() -> None:
    region = f"<!-- generate: changelog -->\nold\n{_hooks.END}\n"
    with pytest.raises(ValueError, match="filled at build time"):
        _hooks.expand(region, "page.md")
