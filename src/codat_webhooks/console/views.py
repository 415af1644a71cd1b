"""The console's pages: the filtered listing, one delivery, replay, login, errors.

Pagination is the store's: each page is one :meth:`Store.find` with ``limit`` and the keyset
``cursor`` of the previous page's last row, so a page costs the same on page 1 and page 500.
"""

from __future__ import annotations

import base64
import json
from importlib import resources
from typing import Any
from urllib.parse import urlencode

import jinja2
import pluggy
from werkzeug.exceptions import BadRequest, HTTPException, NotFound
from werkzeug.routing import MapAdapter
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from ..describe import order_json, parse_time, pretty_body, record_json
from ..headers import redact
from ..queues.base import RetryPolicy
from ..receiver import Receiver
from ..replaying import REPLAYABLE, SUCCEEDED, handler_plan, replay_record
from ..stores.base import State, Store, page_cursor
from ._history import key_search, status_panel, timeline

__all__ = ["Views"]

STATES = [state.value for state in State]
_ALARMING = frozenset({State.FAILED, State.PARKED})


class Views:
    """Renders pages from the store; the console decides who may see them."""

    def __init__(
        self,
        templates: jinja2.Environment,
        store: Store,
        *,
        page_size: int,
        retries: RetryPolicy | None = None,
    ) -> None:
        self._templates = templates
        self._store = store
        self._page_size = page_size
        self._retries = retries
        self._css = resources.files(__package__).joinpath("console.css").read_bytes()

    def _page(self, template: str, status: int = 200, **context: Any) -> Response:
        html = self._templates.get_template(template).render(**context)
        return Response(html, status=status, content_type="text/html; charset=utf-8")

    def stylesheet(self) -> Response:
        return Response(self._css, content_type="text/css; charset=utf-8")

    def error(self, exc: HTTPException) -> Response:
        code = exc.code or 500
        return self._page("error.html", code, code=code, name=exc.name, detail=exc.description)

    def login(self, csrf: str, *, error: str | None) -> Response:
        return self._page("login.html", csrf=csrf, error=error)

    def deliveries(self, request: Request, csrf: str) -> Response:
        args = request.args
        found_key = key_search(self._store, args.get("key", ""))
        if found_key is not None:
            return redirect(f"delivery?{urlencode({'key': found_key})}", 303)
        states = args.getlist("state")
        if any(state not in STATES for state in states):
            raise BadRequest(f"state must be one of {', '.join(STATES)}")
        filters: dict[str, Any] = {
            "states": [State(state) for state in states],
            "kind": args.get("type") or None,
            "company_id": args.get("company") or None,
            "since": _time(args.get("since"), "since"),
            "before": _time(args.get("before"), "before"),
        }
        cursor = _cursor(args.get("page"))
        found = self._store.find(**filters, cursor=cursor, limit=self._page_size + 1)
        rows, more = found[: self._page_size], len(found) > self._page_size
        kept = [(name, value) for name, value in args.items(multi=True) if name != "page" and value]
        next_page = None
        if more:
            next_page = _query([*kept, ("page", _encode_cursor(page_cursor(rows[-1])))])
        counts = self._store.counts()
        verdicts = self._store.verdicts([record.key for record in rows])
        return self._page(
            "deliveries.html",
            csrf=csrf,
            rows=[record_json(r) | order_json(verdicts.get(r.key)) for r in rows],
            counts=[(state.value, counts[state], state in _ALARMING) for state in State],
            states=STATES,
            chosen=set(states),
            type=args.get("type", ""),
            company=args.get("company", ""),
            since=args.get("since", ""),
            before=args.get("before", ""),
            first_page=_query(kept) if cursor is not None else None,
            next_page=next_page,
            key=args.get("key", ""),
            findings=status_panel(self._store, self._retries),
        )

    def delivery(
        self, request: Request, manager: pluggy.PluginManager, csrf: str, **notice: Any
    ) -> Response:
        key = request.args.get("key") or request.form.get("key") or ""
        record = self._store.get(key)
        if record is None:
            raise NotFound(f"no delivery with key {key!r}")
        plan = handler_plan(manager, record)
        replayed = request.args.get("replayed")
        return self._page(
            "delivery.html",
            notice.pop("status", 200),
            csrf=csrf,
            record=record_json(record) | order_json(self._store.verdict(key)),
            headers=list(redact(record.headers)),
            body=pretty_body(record.body),
            plan=plan,
            replayable=record.state in REPLAYABLE,
            replayed=replayed,
            replay_succeeded=replayed in SUCCEEDED,  # "failed" or "invalid" is no success
            conflicts=[record_json(other) for other in self._store.conflicts(key)],
            **timeline(self._store, record, self._retries),
            **notice,
        )

    def replay(
        self, request: Request, adapter: MapAdapter, replayer: Receiver, csrf: str
    ) -> Response:
        """Replay one delivery through the application's receiver, as ``codat-webhooks replay``
        does: refused (409) when no plugin would handle it, since it would be marked done."""
        key = request.form.get("key", "")
        record = self._store.get(key)
        if record is None:
            raise NotFound(f"no delivery with key {key!r}")
        plan = handler_plan(replayer.plugin_manager, record)
        if not plan.runnable:
            refusal = (
                f"refused: no plugin implements {' or '.join(plan.hooks)}, so replaying would "
                "mark this delivery done without any handler running"
            )
            return self.delivery(
                request, replayer.plugin_manager, csrf, status=409, refusal=refusal
            )
        replayed = replay_record(replayer, record)
        target = adapter.build("delivery", {"key": key, "replayed": replayed.outcome})
        return redirect(target, 303)


def _time(value: str | None, name: str) -> float | None:
    """A ``datetime-local`` value (or any ISO 8601 time), read as UTC unless it says otherwise."""
    if not value:
        return None
    try:
        return parse_time(value)
    except ValueError:
        raise BadRequest(f"{name} must be a date and time like 2026-01-31T14:00") from None


def _encode_cursor(cursor: tuple[float, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(cursor)).encode()).decode()


def _cursor(value: str | None) -> tuple[float, str] | None:
    if not value:
        return None
    try:
        last_seen, key = json.loads(base64.urlsafe_b64decode(value.encode()))
        return float(last_seen), str(key)
    except (ValueError, TypeError):
        raise BadRequest("page is not a cursor this console made") from None


def _query(pairs: list[tuple[str, str]]) -> str:
    """A link to the listing with these parameters, relative to the console's root."""
    return "./?" + urlencode(pairs)
