"""``codat-webhooks trigger``: POST realistic samples to a receiver, as Codat would.

Each invocation builds one sample with a fresh ``AlertId``/``id`` and sends it as the
``webhook-id`` too, so two triggers never collide. ``--repeat`` resends the same key (that is
how Codat retries), and ``--concurrency`` sends those repeats at once, which is the case the
idempotency store exists for: exactly one ``processed``, the rest ``duplicate`` or
``in_progress``.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..delivery import Outcome
from ..errors import ConfigurationError
from ..testing.signing import sign
from . import _catalog
from ._common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    add_credential_flags,
    credentials,
)

__all__ = ["add_parser", "run"]

DEFAULT_URL = "http://127.0.0.1:8000/webhooks/codat"
TIMEOUT = 15.0  # Codat's own deadline for an answer


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "trigger",
        help="POST a realistic sample delivery to a receiver",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: codat-webhooks trigger DataConnectionStatusChanged "
        "--authorization 'Bearer s3cret' --set Data.newStatus=Unlinked --repeat 5 --concurrency 5",
    )
    parser.add_argument("type", metavar="TYPE", help="rule or event type (see `samples`)")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"receiver URL (default {DEFAULT_URL})")
    add_credential_flags(parser)
    parser.add_argument("--company-id", metavar="ID", help="CompanyId to put in the sample")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a body field by dotted path (Data.newStatus=Unlinked); VALUE is JSON "
        "when it parses, else a string",
    )
    parser.add_argument("--repeat", type=_positive, default=1, metavar="N", help="send N times")
    parser.add_argument(
        "--concurrency", type=_positive, default=1, metavar="N", help="N requests in flight at once"
    )
    parser.add_argument(
        "--new-key", action="store_true", help="give every repeat its own key instead of reusing it"
    )
    parser.set_defaults(run=run)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


@dataclass(frozen=True, slots=True)
class _Sent:
    number: int
    key: str
    status: int
    outcome: str
    detail: str
    millis: float


def run(args: argparse.Namespace) -> int:
    sample_type = _catalog.find_type(args.type)
    overrides = [_catalog.parse_override(text) for text in args.overrides]
    if not args.url.startswith(("http://", "https://")):
        raise CommandError(f"--url must be an http(s) URL, got {args.url!r}", EXIT_USAGE)
    authorization, secrets = credentials(args)
    if len(authorization) > 1 or len(secrets) > 1:
        raise CommandError(
            "trigger sends one credential: pass --authorization/--signing-secret once"
        )
    base = sample_type.build(args.company_id)
    for name, value in overrides:
        _catalog.apply_override(base, name, value)
    bodies = [_catalog.fresh_ids(base) if args.new_key and i else base for i in range(args.repeat)]
    sender = _Sender(
        args.url, authorization[0] if authorization else None, secrets[0] if secrets else None
    )
    lock = threading.Lock()
    results: list[_Sent] = []

    def send(number: int) -> None:
        sent = sender.send(number, bodies[number - 1])
        with lock:
            results.append(sent)
            print(
                f"{sent.number:>3}  {sent.status} {sent.outcome:<12} {sent.key}  "
                f"{sent.millis:.1f} ms  {sent.detail}",
                flush=True,
            )

    print(f"POST {args.url}  {sample_type.name}  ({sample_type.hook or 'no hook'})", flush=True)
    with ThreadPoolExecutor(max_workers=min(args.concurrency, args.repeat)) as pool:
        list(pool.map(send, range(1, args.repeat + 1)))
    return EXIT_OK if all(_acceptable(sent) for sent in results) else EXIT_FAILED


def _acceptable(sent: _Sent) -> bool:
    """2xx, or a 503 ``in_progress``: a concurrent duplicate held back is dedup doing its job."""
    return 200 <= sent.status < 300 or sent.outcome == Outcome.IN_PROGRESS


class _Sender:
    def __init__(self, url: str, authorization: str | None, secret: str | None) -> None:
        self.url = url
        self.authorization = authorization
        self.secret = secret
        if secret is not None:
            try:
                sign(b"", secret)
            except ConfigurationError as exc:
                raise CommandError(f"--signing-secret: {exc}", EXIT_USAGE) from None

    def send(self, number: int, body_obj: dict[str, Any]) -> _Sent:
        key = _catalog.body_key(body_obj)
        body = json.dumps(body_obj, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "codat-webhooks-trigger"}
        if self.secret is not None:
            headers |= sign(body, self.secret, msg_id=key)  # signed per attempt, as Svix does
        else:
            headers["webhook-id"] = key
        if self.authorization is not None:
            headers["Authorization"] = self.authorization
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")  # noqa: S310 - the scheme is checked in run()
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, payload = exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CommandError(f"cannot reach {self.url}: {reason}") from None
        millis = (time.perf_counter() - started) * 1000
        outcome, detail = _read_reply(payload)
        return _Sent(number, key, status, outcome, detail, millis)


def _read_reply(payload: bytes) -> tuple[str, str]:
    try:
        reply = json.loads(payload)
    except ValueError:
        return "?", payload[:80].decode("utf-8", "replace")
    if not isinstance(reply, dict):
        return "?", str(reply)[:80]
    return str(reply.get("outcome", "?")), str(reply.get("detail", ""))
