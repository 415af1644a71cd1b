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
import math
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..outcomes import Outcome
from ..testing.signing import sign
from . import _catalog
from ._common import (
    ENV_AUTHORIZATION,
    ENV_SIGNING_SECRET,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    add_credential_flags,
    command,
    credentials,
    emit,
    positive_int,
    warn,
)

__all__ = ["Sender", "Sent", "acceptable", "add_parser", "run", "sender_from_args", "summary"]

DEFAULT_URL = "http://127.0.0.1:8000/webhooks/codat"
TIMEOUT = 15.0  # Codat's own deadline for an answer


def add_parser(subparsers: Any) -> None:
    parser = command(
        subparsers,
        "trigger",
        "POST a realistic sample delivery to a receiver",
        __doc__,
        epilog="example:\n"
        "  codat-webhooks trigger DataConnectionStatusChanged --repeat 5 \\\n"
        "    --concurrency 5 --authorization 'Bearer s3cret' \\\n"
        "    --set Data.newStatus=Unlinked",
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
    parser.add_argument("--repeat", type=positive_int, default=1, metavar="N", help="send N times")
    parser.add_argument(
        "--concurrency",
        type=positive_int,
        default=1,
        metavar="N",
        help="N requests in flight at once",
    )
    parser.add_argument(
        "--new-key", action="store_true", help="give every repeat its own key instead of reusing it"
    )
    parser.add_argument(
        "--json", action="store_true", help="one JSON object per request (no header or summary)"
    )
    parser.set_defaults(run=run)


@dataclass(frozen=True, slots=True)
class Sent:
    """One request and its answer, as ``trigger`` and ``resend`` print it."""

    number: int
    key: str
    status: int
    outcome: str
    detail: str
    millis: float

    def line(self) -> str:
        return (
            f"{self.number:>3}  {self.status} {self.outcome:<12} {self.key}  "
            f"{self.millis:.1f} ms  {self.detail}"
        ).rstrip()

    def json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "key": self.key,
            "status": self.status,
            "outcome": self.outcome,
            "detail": self.detail,
            "ms": round(self.millis, 3),
        }


def run(args: argparse.Namespace) -> int:
    sample_type = _catalog.find_type(args.type)
    overrides = [_catalog.parse_override(text) for text in args.overrides]
    base = sample_type.build(args.company_id)
    for name, value in overrides:
        _catalog.apply_override(base, name, value)
    bodies = [_catalog.fresh_ids(base) if args.new_key and i else base for i in range(args.repeat)]
    sender = sender_from_args(args)
    if sender.authorization is None and sender.secret is None:
        # Said every time: an unauthenticated request answered 401 looks like a receiver bug.
        warn(
            "no credential: sending unauthenticated requests, which a receiver that is not "
            "--insecure answers 401 (pass --authorization or --signing-secret, or set "
            f"{ENV_AUTHORIZATION} / {ENV_SIGNING_SECRET})"
        )
    lock = threading.Lock()
    results: list[Sent] = []

    def send(number: int) -> None:
        body_obj = bodies[number - 1]
        body = json.dumps(body_obj, separators=(",", ":")).encode()
        sent = sender.post(number, _catalog.body_key(body_obj), body)
        with lock:
            results.append(sent)
            if args.json:
                emit(sent.json())
            else:
                print(sent.line(), flush=True)

    if not args.json:
        hook = sample_type.hook or "no hook"
        print(f"POST {args.url}  {sample_type.name}  ({hook})", flush=True)
    with ThreadPoolExecutor(max_workers=min(args.concurrency, args.repeat)) as pool:
        list(pool.map(send, range(1, args.repeat + 1)))
    if args.repeat > 1 and not args.json:
        print(summary(results))
    return EXIT_OK if all(acceptable(sent) for sent in results) else EXIT_FAILED


def summary(results: Sequence[Sent]) -> str:
    """``6 sent: 1 x 200 processed, 5 x 200 duplicate; p50 2.1 ms, p99 4.8 ms``."""
    counts = Counter(f"{sent.status} {sent.outcome}" for sent in results)
    outcomes = ", ".join(f"{n} x {what}" for what, n in sorted(counts.items()))
    millis = sorted(sent.millis for sent in results)
    return (
        f"{len(results)} sent: {outcomes}; "
        f"p50 {_percentile(millis, 50):.1f} ms, p99 {_percentile(millis, 99):.1f} ms"
    )


def _percentile(ordered: Sequence[float], percent: int) -> float:
    """Nearest-rank percentile: a value that was actually measured."""
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


def acceptable(sent: Sent) -> bool:
    """2xx, or a 503 ``in_progress``: a concurrent duplicate held back is dedup doing its job."""
    return 200 <= sent.status < 300 or sent.outcome == Outcome.IN_PROGRESS


def sender_from_args(args: argparse.Namespace) -> Sender:
    """The sender ``--url``, ``--authorization`` and ``--signing-secret`` describe."""
    if not args.url.startswith(("http://", "https://")):
        raise CommandError(f"--url must be an http(s) URL, got {args.url!r}", EXIT_USAGE)
    authorization, secrets = credentials(args)
    if len(authorization) > 1 or len(secrets) > 1:
        raise CommandError(
            f"{args.command} sends one credential: pass --authorization/--signing-secret once"
        )
    return Sender(
        args.url, authorization[0] if authorization else None, secrets[0] if secrets else None
    )


class Sender:
    """POSTs bodies as Codat does: signed per attempt (``webhook-id`` = key) or with a header."""

    def __init__(self, url: str, authorization: str | None, secret: str | None) -> None:
        self.url = url
        self.authorization = authorization
        self.secret = secret  # checked by credentials(), under the name it came by

    def post(
        self, number: int, key: str, body: bytes, headers: Sequence[tuple[str, str]] = ()
    ) -> Sent:
        sending = {"Content-Type": "application/json", "User-Agent": "codat-webhooks-trigger"}
        sending |= dict(headers)
        if self.secret is not None:
            sending |= sign(body, self.secret, msg_id=key)  # signed per attempt, as Svix does
        else:
            sending["webhook-id"] = key
        if self.authorization is not None:
            sending["Authorization"] = self.authorization
        request = urllib.request.Request(self.url, data=body, headers=sending, method="POST")  # noqa: S310 - the scheme is checked in sender_from_args()
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
        return Sent(number, key, status, outcome, detail, millis)


def _read_reply(payload: bytes) -> tuple[str, str]:
    try:
        reply = json.loads(payload)
    except ValueError:
        return "?", payload[:80].decode("utf-8", "replace")
    if not isinstance(reply, dict):
        return "?", str(reply)[:80]
    return str(reply.get("outcome", "?")), str(reply.get("detail", ""))
