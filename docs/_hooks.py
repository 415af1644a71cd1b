"""MkDocs hook: fills ``<!-- generate: NAME -->`` markers in pages from the code itself.

The reference pages (rule types, events, hooks) and the changelog are rebuilt from the rule
table, the event table, the hookspec modules and ``CHANGELOG.md`` on every ``mkdocs build``, so
the site cannot drift from the code. An unknown marker name fails the build. The generators are
plain functions of the code, so ``tests/test_docs.py`` can call them too.

Tables generated from the code are also committed, between ``<!-- generate: NAME -->`` and
``<!-- end generate -->``, so the reference reads the same in the repository as on the site;
``tests/test_docs_generated.py`` fails when they are stale, and ``scripts/generate-docs`` (this
file run as a script) rewrites them. Copies of other repository files (``changelog``,
``include``) stay single markers filled at build time: the file they copy is already there.
"""

from __future__ import annotations

import html
import inspect
import json
import re
import sys
import types
import typing
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SEED_DIR = ROOT / "tests" / "samples"
MARKER = re.compile(r"^<!-- generate: ([a-z0-9-]+)(?: (\S+))? -->$", re.MULTILINE)
END = "<!-- end generate -->"
REGION = re.compile(
    r"^(<!-- generate: ([a-z0-9-]+) -->)\n(?:(?!<!-- generate: ).)*?^" + re.escape(END) + "$",
    re.MULTILINE | re.DOTALL,
)
PAGES = ROOT / "docs"
BANNER = re.compile(r"^# --- (.+?) -+$")
ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")


# --- shared formatting ------------------------------------------------------------------------


def type_name(annotation: Any) -> str:
    """A short, readable spelling of a resolved annotation (``UUID | None``, ``datetime``)."""
    if annotation is type(None):
        return "None"
    if annotation is Any:
        return "Any"
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(arg) for arg in typing.get_args(annotation))
    if origin is typing.Annotated:
        return type_name(typing.get_args(annotation)[0])
    if origin is not None:
        args = ", ".join(type_name(arg) for arg in typing.get_args(annotation))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


DEFINITION = re.compile(r"^(``[^`]+``)\n((?:    .+\n?)+)", re.MULTILINE)


def docstring_markdown(text: str | None) -> str:
    """A docstring as Markdown: reST roles become code spans (``:class:`X``` -> ```X```) and
    reST definition lists (a term, then indented lines) become bullet items."""

    def bullet(match: re.Match[str]) -> str:
        body = " ".join(line.strip() for line in match.group(2).splitlines())
        return f"- {match.group(1)}: {body}\n"

    return DEFINITION.sub(bullet, ROLE.sub(r"`\1`", inspect.cleandoc(text or "")))


def json_block(obj: Any) -> str:
    return "```json\n" + json.dumps(obj, indent=2, ensure_ascii=False) + "\n```"


def code(text: str) -> str:
    return f"`{text}`"


def breakable_code(name: str) -> str:
    """``name`` as inline code that a narrow table column may wrap after ``_`` or ``.`` only.

    The stylesheet forbids breaking inside a word; long hook names then need these break
    opportunities (``<wbr>``) to fit the column instead of widening the table off the page.
    """
    marked = html.escape(name).replace("_", "_<wbr>").replace(".", ".<wbr>")
    return f"<code>{marked}</code>"


def field_type(field: Any) -> str:
    """The field's type, with *(UTC)* when the model makes zone-less values UTC."""
    utc = any(
        getattr(getattr(meta, "func", None), "__name__", "") == "_assume_utc"
        for meta in field.metadata
    )
    return f"`{type_name(field.annotation)}`" + (" *(UTC)*" if utc else "")


def fields_table(model: Any) -> str:
    """Attribute, Codat's key (as sent and as written back) and type of each model field."""
    rows = ["| attribute | Codat key | type |", "|---|---|---|"]
    for name, field in model.model_fields.items():
        key = field.serialization_alias or field.alias or name
        rows.append(f"| `{name}` | `{key}` | {field_type(field)} |")
    return "\n".join(rows)


# --- legacy rule types ------------------------------------------------------------------------


def seed_bodies() -> dict[Any, Any]:
    """The seed documents (Codat's own examples) in tests/samples, keyed by their rule type."""
    from codat_webhooks.rules import RuleType

    bodies = {}
    for path in sorted(SEED_DIR.glob("*.json")):
        body = json.loads(path.read_bytes())
        kind = RuleType.parse(body.get("RuleType", body.get("Type")))
        if kind is not None:
            bodies[kind] = body
    return bodies


def _stable_ids(body: Any) -> Any:
    """Replace the random UUIDs of a generated sample by fixed ones, so builds are repeatable."""
    text = json.dumps(body)
    found = dict.fromkeys(re.findall(r"[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}", text))
    for index, value in enumerate(found):
        text = text.replace(value, str(uuid.uuid5(uuid.NAMESPACE_URL, f"sample-{index}")))
    return json.loads(text)


def rules_table() -> str:
    from codat_webhooks.rules import RULES

    rows = ["| canonical `RuleType` | also accepted | hook |", "|---|---|---|"]
    for rule in RULES:
        spellings = ", ".join(code(s) for s in rule.spellings) or "—"
        rows.append(
            f"| [`{rule.type.value}`](#{rule.hook}) | {spellings} "
            f"| [{breakable_code(rule.hook)}](hooks.md#{rule.hook}) |"
        )
    return "\n".join(rows)


def alert_envelope() -> str:
    from codat_webhooks.models.legacy import Alert

    return fields_table(Alert)


def rule_details() -> str:
    from codat_webhooks.models.legacy import ALERT_CLASSES
    from codat_webhooks.rules import RULES
    from codat_webhooks.testing import legacy_sample

    seeds = seed_bodies()
    parts = []
    for rule in RULES:
        alert_class = ALERT_CLASSES[rule.type]
        data_model: Any = alert_class.model_fields["data"].annotation
        parts.append(f"### {rule.type.value} {{ #{rule.hook} }}")
        parts.append(
            f"{rule.summary}\n\n"
            f"- `RuleType.{rule.type.name}`, hook [`{rule.hook}`](hooks.md#{rule.hook})\n"
            f"- model: `{alert_class.__name__}`, `alert.data` is `{data_model.__name__}`"
        )
        if data_model.model_fields:
            parts.append(fields_table(data_model))
        else:
            parts.append("No documented `Data`; any keys Codat sends are kept as extras.")
        seed = seeds.get(rule.type)
        if seed is not None:
            parts.append("The seed sample, as Codat documents it:\n\n" + json_block(seed))
        else:
            sample = _stable_ids(legacy_sample(rule.type))
            parts.append(
                "Codat's rule-types page has no example for this one; "
                "`codat_webhooks.testing.legacy_sample` builds this shape:\n\n" + json_block(sample)
            )
    return "\n\n".join(parts)


# --- new-service events -----------------------------------------------------------------------


def events_table() -> str:
    from codat_webhooks import event_types

    return render_events(event_types)


def _nested_models(annotation: Any) -> Iterator[Any]:
    """The pydantic models inside an annotation (``list[Connection] | None`` -> Connection)."""
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for argument in typing.get_args(annotation):
        yield from _nested_models(argument)


def _model_anchor(model: Any) -> str:
    return "model-" + str(model.__name__).lower()


def linked_fields_table(model: Any, seen: dict[str, Any]) -> str:
    """Like :func:`fields_table`, linking nested models and collecting them in ``seen``."""
    rows = ["| attribute | Codat key | type |", "|---|---|---|"]
    for name, field in model.model_fields.items():
        key = field.serialization_alias or field.alias or name
        kind = field_type(field)
        nested = list(_nested_models(field.annotation))
        for inner in nested:
            seen.setdefault(inner.__name__, inner)
        if nested:
            links = ", ".join(f"[{m.__name__}](#{_model_anchor(m)})" for m in nested)
            kind += f" ({links})"
        rows.append(f"| `{name}` | `{key}` | {kind} |")
    return "\n".join(rows)


def render_events(module: Any) -> str:
    """The event table, then each event's payload fields, then the shared payload parts."""
    from codat_webhooks.models import events as models

    documented_hooks = {name for _, name, _ in hookspecs()}
    from codat_webhooks.testing.samples import event_sample as sample

    def hook_link(hook: str) -> str:
        linked = breakable_code(hook)
        return f"[{linked}](hooks.md#{hook})" if hook in documented_hooks else linked

    rows = ["| `eventType` | hook | replaces legacy | trigger |", "|---|---|---|---|"]
    for spec in module.EVENTS:
        legacy = ", ".join(code(name) for name in spec.legacy) or "—"
        rows.append(
            f"| [`{spec.type.value}`](#{spec.hook}) | {hook_link(spec.hook)} | {legacy} "
            f"| {docstring_markdown(spec.summary)} |"
        )
    parts = ["\n".join(rows), "### The envelope", fields_table(models.Event)]
    seen: dict[str, Any] = {}
    for spec in module.EVENTS:
        event_class = models.EVENT_CLASSES.get(spec.type, models.Event)
        payload = event_class.model_fields["payload"].annotation
        parts.append(f"### {spec.type.value} {{ #{spec.hook} }}")
        parts.append(
            f"{docstring_markdown(spec.summary)}\n\n"
            f"- `EventType.{spec.type.name}`, hook {hook_link(spec.hook)}\n"
            f"- model: `{event_class.__name__}`, `event.payload` is "
            f"`{getattr(payload, '__name__', type_name(payload))}`"
        )
        if isinstance(payload, type) and getattr(payload, "model_fields", None):
            parts.append(linked_fields_table(payload, seen))
        body = _stable_ids(sample(spec.type))
        parts.append("A sample body:\n\n" + json_block(body))
    parts.append("### Payload parts")
    done: set[str] = set()
    while len(done) < len(seen):
        for name, model in sorted(seen.items()):
            if name in done:
                continue
            done.add(name)
            parts.append(f"#### `{name}` {{ #{_model_anchor(model)} }}")
            parts.append(linked_fields_table(model, seen))
    return "\n\n".join(parts)


# --- hooks ------------------------------------------------------------------------------------


def hookspecs() -> Iterator[tuple[str, str, Callable[..., Any]]]:
    """(group title, name, function) of every hookspec, module by module, in source order."""
    from codat_webhooks.hookspecs import PROJECT_NAME, SPEC_MODULES

    marker = PROJECT_NAME + "_spec"
    for module in SPEC_MODULES:
        source_lines = inspect.getsource(module).splitlines()
        banners = [
            (number, match.group(1))
            for number, line in enumerate(source_lines, 1)
            if (match := BANNER.match(line))
        ]
        specs = [
            function
            for _, function in inspect.getmembers(module, inspect.isfunction)
            if hasattr(function, marker)
        ]
        specs.sort(key=lambda function: function.__code__.co_firstlineno)
        for function in specs:
            line = function.__code__.co_firstlineno
            group = next((title for number, title in reversed(banners) if number < line), "Other")
            yield group, function.__name__, function


def hooks_reference() -> str:
    from codat_webhooks.rules import RULES

    rule_hooks = {rule.hook: rule.type.value for rule in RULES}
    parts = []
    current_group = None
    for group, name, function in hookspecs():
        if group != current_group:
            parts.append(f"## {group}")
            current_group = group
        signature = inspect.signature(function)
        arguments = ", ".join(
            f"{parameter.name}: {parameter.annotation}"
            for parameter in signature.parameters.values()
        )
        parts.append(f"### `{name}`")
        parts.append(f"```python\n{name}({arguments})\n```")
        parts.append(docstring_markdown(function.__doc__))
        if name in rule_hooks:
            parts.append(f"Fields and a sample body: [{rule_hooks[name]}](rules.md#{name}).")
    return "\n\n".join(parts)


def hook_common_arguments() -> str:
    """Each hookspec module's docstring: what its hooks share (the common arguments)."""
    from codat_webhooks.hookspecs import SPEC_MODULES

    return "\n\n".join(docstring_markdown(module.__doc__) for module in SPEC_MODULES)


def migration_table() -> str:
    """Legacy rule type -> the new-service events that replace it, from the event table."""
    from codat_webhooks.event_types import EVENTS
    from codat_webhooks.rules import RULES

    rows = ["| legacy rule type | new-service events |", "|---|---|"]
    for rule in RULES:
        events = [spec for spec in EVENTS if rule.type.value in spec.legacy]
        links = ", ".join(f"[`{e.type.value}`](reference/rules.md#{e.hook})" for e in events)
        rows.append(f"| `{rule.type.value}` | {links or 'none'} |")
    return "\n".join(rows)


# --- ordering -------------------------------------------------------------------------------


def ordering_scopes() -> str:
    """The ordering scopes of :data:`codat_webhooks.ordering.SCOPES`, one row per family."""
    from codat_webhooks.ordering import SCOPES

    rows = ["| types | scope | ordered by | scope text |", "|---|---|---|---|"]
    for spec in SCOPES:
        types = ", ".join(code(kind.value) for kind in spec.types)
        rows.append(f"| {types} | {spec.identity} | {spec.ordered_by} | `{spec.name}:...` |")
    return "\n".join(rows)


# --- changelog --------------------------------------------------------------------------------


def changelog() -> str:
    return (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")


LANGUAGES = {".py": "python", ".toml": "toml", ".md": "markdown", ".cfg": "ini"}


def include(path: str) -> str:
    """A repository file as a titled code block, so a page shows the code its tests run."""
    source = (ROOT / path).resolve()
    if ROOT not in source.parents:
        raise ValueError(f"{path}: only files inside the repository can be included")
    text = source.read_text(encoding="utf-8").rstrip("\n")
    return f'```{LANGUAGES.get(source.suffix, "text")} title="{path}"\n{text}\n```'


GENERATORS: dict[str, Callable[..., str]] = {
    "rules-table": rules_table,
    "alert-envelope": alert_envelope,
    "rule-details": rule_details,
    "events-table": events_table,
    "hooks-reference": hooks_reference,
    "hook-common-arguments": hook_common_arguments,
    "changelog": changelog,
    "include": include,
    "migration-table": migration_table,
    "ordering-scopes": ordering_scopes,
}


COMMITTED = frozenset(GENERATORS) - {"changelog", "include"}
"""Generators whose output is committed into the page between the two markers."""


def regenerate(markdown: str, where: str = "page") -> str:
    """Fill every committed region with what the code generates now."""

    def fill(match: re.Match[str]) -> str:
        start, name = match.groups()
        if name not in COMMITTED:
            raise ValueError(f"{where}: {name!r} is filled at build time; use a single marker")
        return f"{start}\n\n{GENERATORS[name]()}\n\n{END}"

    return REGION.sub(fill, markdown)


def expand(markdown: str, where: str = "page") -> str:
    """Refresh the committed regions and fill the single markers; an unknown or misplaced name
    is an error, not a silent gap."""
    markdown = regenerate(markdown, where)
    regions = [match.span() for match in REGION.finditer(markdown)]

    def generate(match: re.Match[str]) -> str:
        if any(start <= match.start() < end for start, end in regions):
            return match.group(0)
        name, argument = match.groups()
        if name not in GENERATORS:
            raise ValueError(f"{where}: unknown generator {name!r}; known: {sorted(GENERATORS)}")
        if name in COMMITTED:
            raise ValueError(
                f"{where}: {name!r} must be committed: add {END} after it and run "
                "scripts/generate-docs"
            )
        return GENERATORS[name](*([argument] if argument else []))

    return MARKER.sub(generate, markdown)


def stale_pages() -> list[Path]:
    """The pages whose committed regions differ from what the code generates now."""
    return [
        page
        for page in sorted(PAGES.rglob("*.md"))
        if regenerate(text := page.read_text(encoding="utf-8"), str(page)) != text
    ]


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """MkDocs entry point: runs for every page before it is rendered."""
    return expand(markdown, page.file.src_uri)


def main() -> int:
    """Rewrite the stale committed regions in place (``scripts/generate-docs``)."""
    for page in stale_pages():
        text = page.read_text(encoding="utf-8")
        page.write_text(regenerate(text, str(page)), encoding="utf-8")
        print(f"regenerated {page.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
