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
from ..models._parse import load_object
from ..routing import key_from_body, route
from ..verify import Authenticator, message_id
from . import _catalog
from ._common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    add_credential_flags,
    credentials,
    first_line,
)

__all__ = ["add_parsers", "read_headers"]


def add_parsers(subparsers: Any) -> None:
    samples: argparse.ArgumentParser = subparsers.add_parser(
        "samples", help="list every rule and event type with its hook, or print a sample body"
    )
    samples.add_argument("type", nargs="?", metavar="TYPE", help="print a sample of this type")
    samples.add_argument("--company-id", metavar="ID", help="CompanyId to put in the sample")
    samples.set_defaults(run=run_samples)

    plugins: argparse.ArgumentParser = subparsers.add_parser(
        "plugins", help="installed plugins, their distribution and the hooks they implement"
    )
    plugins.set_defaults(run=run_plugins)

    verify: argparse.ArgumentParser = subparsers.add_parser(
        "verify",
        help="check a captured request against the configured credentials",
        description="Check a captured request and say exactly why it would be rejected. "
        "HEADERS is 'Name: value' lines (curl -D / a proxy dump; a request line is skipped) "
        "or a JSON object; BODY is the raw body bytes.",
    )
    verify.add_argument("headers_file", metavar="HEADERS", type=Path)
    verify.add_argument("body_file", metavar="BODY", type=Path)
    add_credential_flags(verify)
    verify.add_argument(
        "--tolerance",
        type=float,
        default=300,
        metavar="SECONDS",
        help="allowed signature-timestamp skew (default 300; raise it for old captures)",
    )
    verify.set_defaults(run=run_verify)


# --- samples -----------------------------------------------------------------------------------


def run_samples(args: argparse.Namespace) -> int:
    if args.type:
        sample_type = _catalog.find_type(args.type)
        print(json.dumps(sample_type.build(args.company_id), indent=2))
        return EXIT_OK
    known = _catalog.types()
    width = max(len(t.name) for t in known)
    hook_width = max(len(t.hook) for t in known)
    for sample_type in known:
        print(
            f"{sample_type.name:<{width}}  {sample_type.hook:<{hook_width}}  {sample_type.summary}"
        )
    return EXIT_OK


# --- plugins -----------------------------------------------------------------------------------


def run_plugins(args: argparse.Namespace) -> int:
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
    for name, plugin in manager.list_name_plugin():
        dist = dists.get(id(plugin))
        origin = f"{dist.project_name} {dist.version}" if dist is not None else "built-in"
        rows.append((name or "?", origin, ", ".join(hooks.get(id(plugin), [])) or "(no hooks)"))
    third_party = sum(1 for row in rows if row[1] != "built-in")
    for name, origin, implemented in rows:
        print(f"{name}  ({origin})\n    {implemented}")
    print(f"{third_party} installed plugin(s) in the 'codat_webhooks' entry-point group")
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
    try:
        verified_by = authenticator.verify(headers, body)
    except CodatWebhookError as exc:
        print(f"REJECTED (401): {exc.reason}")
        return EXIT_FAILED
    print(f"authenticated by {verified_by}")
    try:
        obj = load_object(body)
        routed = route(obj)
    except PayloadError as exc:
        print(f"REJECTED ({exc.status_hint}): {first_line(exc.reason)}")
        return EXIT_FAILED
    key = message_id(headers) or key_from_body(obj)
    print(f"OK: {routed.kind!r} for company {routed.company_id or '-'}, key {key}")
    return EXIT_OK
