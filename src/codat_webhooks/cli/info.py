"""``samples``, ``plugins`` and ``verify``: questions answered without a store."""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..errors import CodatWebhookError, ConfigurationError, PayloadError
from ..headers import Headers
from ..hooks.manager import make_plugin_manager
from ..verify import Authenticator, message_id
from . import _catalog
from ._app import add_app_flag, load_app
from ._common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    add_credential_flags,
    command,
    credentials,
    emit,
    first_line,
    plugin_label,
)

__all__ = ["add_parsers", "read_headers"]


SAMPLES = """List every type ``trigger`` can send: the legacy rule types and the new-service
event types, each with the hook it calls and what it means. With a TYPE, print a sample body of
that type (any spelling Codat used for a rule type), ready to edit and send or to use in a test.
"""

PLUGINS = """List the plugins a receiver would run: the built-in ones and those installed under the
``codat_webhooks`` entry point, with their distribution and the hooks each implements. With
``--app``, the plugins of your application's own receiver instead.
"""

VERIFY = """Check a captured request against the credentials and say exactly why the receiver
would accept or reject it: which credential matched, or which header is missing or wrong, then
the type and key of the body.

HEADERS is a file of the request's headers: 'Name: value' lines (curl -D, a proxy dump; a
request line is skipped) or a JSON object. BODY is a file holding the raw body bytes, exactly as
received.
"""


def add_parsers(subparsers: Any) -> None:
    samples = command(
        subparsers,
        "samples",
        "list the rule and event types and their hooks, or a sample",
        SAMPLES,
    )
    samples.add_argument("type", nargs="?", metavar="TYPE", help="print a sample of this type")
    samples.add_argument("--company-id", metavar="ID", help="CompanyId to put in the sample")
    samples.add_argument(
        "--json", action="store_true", help="one JSON object per type (or the sample on one line)"
    )
    samples.set_defaults(run=run_samples)

    plugins = command(
        subparsers, "plugins", "the installed plugins and the hooks they implement", PLUGINS
    )
    add_app_flag(plugins)
    plugins.add_argument("--json", action="store_true", help="one JSON object per plugin")
    plugins.set_defaults(run=run_plugins)

    verify = command(
        subparsers, "verify", "check a captured request against the credentials", VERIFY
    )
    verify.add_argument(
        "headers_file",
        metavar="HEADERS",
        type=Path,
        help="file of the request's headers: 'Name: value' lines or a JSON object",
    )
    verify.add_argument(
        "body_file", metavar="BODY", type=Path, help="file of the request's raw body bytes"
    )
    add_credential_flags(verify)
    verify.add_argument(
        "--tolerance",
        type=float,
        default=300,
        metavar="SECONDS",
        help="allowed signature-timestamp skew (default 300; raise it for old captures)",
    )
    verify.add_argument("--json", action="store_true", help="the verdict as one JSON object")
    verify.set_defaults(run=run_verify)


# --- samples -----------------------------------------------------------------------------------


def run_samples(args: argparse.Namespace) -> int:
    if args.type:
        sample_type = _catalog.find_type(args.type)
        print(json.dumps(sample_type.build(args.company_id), indent=None if args.json else 2))
        return EXIT_OK
    known = _catalog.types()
    if args.json:
        for sample_type in known:
            emit(
                {"type": sample_type.name, "hook": sample_type.hook, "summary": sample_type.summary}
            )
        return EXIT_OK
    width = max(len(t.name) for t in known)
    hook_width = max(len(t.hook) for t in known)
    for sample_type in known:
        print(
            f"{sample_type.name:<{width}}  {sample_type.hook:<{hook_width}}  {sample_type.summary}"
        )
    return EXIT_OK


# --- plugins -----------------------------------------------------------------------------------


def run_plugins(args: argparse.Namespace) -> int:
    app = load_app(args)
    if app is not None:
        manager = app.receiver.plugin_manager
    else:
        try:
            manager = make_plugin_manager(load_entrypoints=True)
        except ConfigurationError as exc:
            raise CommandError(f"a plugin is broken: {exc}") from None
    hooks: dict[int, list[str]] = defaultdict(list)
    for name, caller in sorted(vars(manager.hook).items()):
        for impl in caller.get_hookimpls():
            hooks[id(impl.plugin)].append(name)
    dists = {id(plugin): dist for plugin, dist in manager.list_plugin_distinfo()}
    rows = []
    for _, plugin in manager.list_name_plugin():
        dist = dists.get(id(plugin))
        name = plugin_label(manager, plugin)
        if dist is not None:
            origin, version = dist.project_name, dist.version
        else:
            builtin = (manager.get_name(plugin) or "").startswith("codat_webhooks.")
            origin, version = ("built-in" if builtin else "app"), None
        rows.append((name, origin, version, hooks.get(id(plugin), [])))
    if args.json:
        for name, origin, version, implemented in rows:
            emit({"name": name, "origin": origin, "version": version, "hooks": implemented})
        return EXIT_OK
    for name, origin, version, implemented in rows:
        label = f"{origin} {version}" if version else origin
        print(f"{name}  ({label})\n    {', '.join(implemented) or '(no hooks)'}")
    installed = sum(1 for row in rows if row[2] is not None)
    print(f"{installed} installed plugin(s) in the 'codat_webhooks' entry-point group")
    print("Every Receiver loads them all, in every app, unless built with load_entrypoints=False.")
    return EXIT_OK


# --- verify ------------------------------------------------------------------------------------


def read_headers(text: str) -> list[tuple[str, str]]:
    """Headers from a JSON object/list of pairs, or from ``Name: value`` lines."""
    stripped = text.strip()
    if stripped.startswith(("{", "[")):
        try:
            loaded = json.loads(stripped)
        except ValueError as exc:
            raise CommandError(f"headers file is not valid JSON: {exc}", EXIT_USAGE) from None
        pairs = loaded.items() if isinstance(loaded, dict) else loaded
        return [(str(name), str(value)) for name, value in pairs]
    headers = []
    for number, line in enumerate(stripped.splitlines(), 1):
        if not line.strip() or (number == 1 and ":" not in line.split(" ", 1)[0] and " " in line):
            continue  # blank line, or a request/status line such as "POST /webhooks HTTP/1.1"
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise CommandError(
                f"headers file line {number} is not 'Name: value': {line!r}", EXIT_USAGE
            )
        headers.append((name.strip(), value.strip()))
    return headers


def run_verify(args: argparse.Namespace) -> int:
    try:
        headers = Headers(read_headers(args.headers_file.read_text("utf-8")))
        body = args.body_file.read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read {exc.filename}: {exc.strerror}") from None
    authorization, secrets = credentials(args)
    if not authorization and not secrets:
        raise CommandError(
            "no credentials to verify against: pass --authorization and/or --signing-secret "
            "(or set CODAT_WEBHOOKS_AUTHORIZATION / CODAT_WEBHOOKS_SIGNING_SECRET)",
            EXIT_USAGE,
        )
    try:
        authenticator = Authenticator(
            authorization or None, secrets or None, tolerance=args.tolerance
        )
    except ConfigurationError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    verdict = _verdict(authenticator, headers, body)
    if args.json:
        emit(verdict)
    elif verdict["ok"]:
        print(f"authenticated by {verdict['verified_by']}")
        company = verdict["company_id"] or "-"
        print(f"OK: {verdict['type']!r} for company {company}, key {verdict['key']}")
    else:
        if verdict["verified_by"]:
            print(f"authenticated by {verdict['verified_by']}")
        print(f"REJECTED ({verdict['status']}): {verdict['reason']}")
    return EXIT_OK if verdict["ok"] else EXIT_FAILED


def _verdict(authenticator: Authenticator, headers: Headers, body: bytes) -> dict[str, Any]:
    """What the receiver would say, with stable keys (``verify --json`` prints it)."""
    verdict: dict[str, Any] = {
        "ok": False,
        "status": 401,
        "verified_by": None,
        "reason": None,
        "type": None,
        "company_id": None,
        "key": None,
    }
    try:
        verdict["verified_by"] = authenticator.verify(headers, body)
    except CodatWebhookError as exc:
        return verdict | {"reason": exc.reason}
    from ..models._parse import load_object  # the models: only once a body is read
    from ..routing import key_from_body, route

    try:
        obj = load_object(body)
        routed = route(obj)
    except PayloadError as exc:
        return verdict | {"status": exc.status_hint, "reason": first_line(exc.reason)}
    key = message_id(headers) or key_from_body(obj)
    return verdict | {
        "ok": True,
        "status": 200,
        "type": routed.kind,
        "company_id": routed.company_id,
        "key": key,
    }
