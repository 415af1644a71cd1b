"""Signature verification: ours against the official Svix library on the same deliveries.

Run: ``python benchmarks/verify.py [--n 500] [--rounds 200]``. Every case verifies the same
``--n`` signed deliveries (a ~1 KB ``connection.connected`` event, distinct message ids), once
per round, the cases taking turns; the best round of each is kept (short batches in turns find
the machine's quiet moments, so the ratio holds on a busy machine too). It prints microseconds
per verification and the ratio to ``svix.webhooks.Webhook.verify`` measured in the same run:

* svix: ``Webhook(secret).verify(body, headers)`` (baseline; it does not parse the JSON);
* standardwebhooks: ``Webhook(secret).verify(body, headers, json_parse=False)``;
* ours: :class:`codat_webhooks.verify.SignatureCheck` over :class:`Headers` built per delivery,
  as the receiver does;
* ours, 2 secrets: the same with a rotation secret configured that does not match first;
* floor: one HMAC-SHA256 + base64 + ``compare_digest``, no header handling at all.

Target (issue 23): ours at most half of svix's time (ratio <= 0.5); the floor is about 0.35.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import os
import time
from collections.abc import Callable, Sequence

import standardwebhooks
from svix.webhooks import Webhook as SvixWebhook

from codat_webhooks.event_types import EventType
from codat_webhooks.headers import Headers
from codat_webhooks.testing import event_body, sign
from codat_webhooks.verify import SignatureCheck, decode_signing_secret

Delivery = tuple[bytes, dict[str, str]]


def make_deliveries(secret: str, n: int) -> list[Delivery]:
    body = event_body(EventType.CONNECTION_CONNECTED)
    return [(body, sign(body, secret, msg_id=f"msg_{i:08d}")) for i in range(n)]


def best_in_turns(runs: dict[str, Callable[[], None]], rounds: int, n: int) -> dict[str, float]:
    """Microseconds per item of each run, the best of ``rounds`` rounds taken in turns."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: seconds / n * 1e6 for name, seconds in best.items()}


def cases(secret: str, deliveries: Sequence[Delivery]) -> dict[str, Callable[[], None]]:
    svix = SvixWebhook(secret)
    std = standardwebhooks.Webhook(secret)
    ours = SignatureCheck({"current": secret})
    rotated = SignatureCheck(
        {"old": "whsec_" + base64.b64encode(os.urandom(24)).decode(), "current": secret}
    )
    key = decode_signing_secret(secret)

    def run_svix() -> None:
        for body, headers in deliveries:
            svix.verify(body, headers)

    def run_std() -> None:
        for body, headers in deliveries:
            std.verify(body, headers, json_parse=False)

    def run_ours() -> None:
        for body, headers in deliveries:
            ours(Headers(headers), body)

    def run_rotated() -> None:
        for body, headers in deliveries:
            rotated(Headers(headers), body)

    def run_floor() -> None:
        for body, headers in deliveries:
            signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
            digest = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
            hmac.compare_digest(digest, headers["webhook-signature"][3:].encode())

    return {
        "svix Webhook.verify (baseline)": run_svix,
        "standardwebhooks verify": run_std,
        "codat_webhooks SignatureCheck": run_ours,
        "codat_webhooks, 2 secrets": run_rotated,
        "floor: hmac + b64 + compare": run_floor,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=500, help="deliveries per round")
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args(argv)

    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    deliveries = make_deliveries(secret, args.n)
    print(f"{args.n} deliveries of {len(deliveries[0][0])} bytes, best of {args.rounds} rounds")
    results = best_in_turns(cases(secret, deliveries), args.rounds, args.n)
    baseline = results["svix Webhook.verify (baseline)"]
    for name, micros in results.items():
        print(f"{name:34s} {micros:7.2f} µs/op   ratio {micros / baseline:5.2f}")
    ours = results["codat_webhooks SignatureCheck"] / baseline
    verdict = "met" if ours <= 0.5 else "NOT met"
    print(f"target ours/svix <= 0.5: {ours:.2f} ({verdict})")


if __name__ == "__main__":
    main()
