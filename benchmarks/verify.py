"""Signature verification: ours against the official Svix library on the same deliveries.

Run: ``python benchmarks/verify.py [--n 20000] [--repeat 5]``. Every case verifies the same
``--n`` signed deliveries (a ~1 KB ``connection.connected`` event, distinct message ids), takes
the best of ``--repeat`` runs, and prints microseconds per verification and the ratio to
``svix.webhooks.Webhook.verify`` measured in the same run:

* svix: ``Webhook(secret).verify(body, headers)`` (baseline; it does not parse the JSON);
* standardwebhooks: ``Webhook(secret).verify(body, headers, json_parse=False)``;
* ours: :class:`codat_webhooks.verify.SignatureCheck` over :class:`Headers` built per delivery,
  as the receiver does;
* ours, 2 secrets: the same with a rotation secret configured that does not match first;
* floor: one HMAC-SHA256 + base64 + ``compare_digest``, no header handling at all.

Target (issue 4): ours no slower than svix (ratio <= 1.0).
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


def best_of(repeat: int, run: Callable[[], None], n: int) -> float:
    """Microseconds per item, best of ``repeat`` runs (the least disturbed by the machine)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times) / n * 1e6


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
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    deliveries = make_deliveries(secret, args.n)
    print(f"{args.n} deliveries of {len(deliveries[0][0])} bytes, best of {args.repeat}")
    results = {
        name: best_of(args.repeat, run, args.n) for name, run in cases(secret, deliveries).items()
    }
    baseline = results["svix Webhook.verify (baseline)"]
    for name, micros in results.items():
        print(f"{name:34s} {micros:7.2f} µs/op   ratio {micros / baseline:5.2f}")
    ours = results["codat_webhooks SignatureCheck"] / baseline
    verdict = "OK" if ours <= 1.0 else "SLOWER THAN SVIX"
    print(f"target ours/svix <= 1.0: {ours:.2f} {verdict}")


if __name__ == "__main__":
    main()
