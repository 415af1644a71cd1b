"""The signature peers' own test suites, ported as data and run against our verifier.

Sources (read with ``git show``; rerun the comparison by fetching them again):

* ``standard-webhooks/standard-webhooks`` ``libraries/*/``: the Standard Webhooks libraries;
* ``svix/svix-webhooks`` ``*/``: the Svix libraries Codat tells receivers to use.

Only facts are ported (secrets, message IDs, timestamps, payloads, header edits, expected
signatures and outcomes), never code. Each peer test becomes a row naming its file and test; the
scenario it runs is described once in :data:`SCENARIOS`. A "now" in a peer test is
:data:`NOW` here, verified half a second later, as a real clock would be (the peers floor the
current time to whole seconds when they sign). Peer tests of language plumbing (null headers in
C#, Elixir's argument types, sign-side argument checks) have no counterpart in a verifier that
takes ``(headers, body)`` and are not ported.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

import pytest

from codat_webhooks import ConfigurationError, VerificationError
from codat_webhooks.headers import Headers
from codat_webhooks.testing import sign
from codat_webhooks.verify import Authenticator

NOW = 1_764_633_600
"""The moment every "now" in the peers' tests stands for (whole seconds, as they sign it)."""

DEFAULT_SECRET = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
DEFAULT_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
DEFAULT_PAYLOAD = b'{"test": 2432232314}'
RUST_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
RUST_ID = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk"
RUST_PAYLOAD = b'{"email":"test@example.com","username":"test_user"}'
RUST_SIGNATURE = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
BAD_V1 = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
BAD_V2 = "v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
VALID = "<valid>"
"""Stands for the correct ``v1,`` signature of the scenario's message."""
PARTIAL = "<valid[:8]>"
"""The first eight characters of the correct signature (Rust's partial-signature test)."""
TOLERANCE = 300


def b64key(text: str) -> bytes:
    """A base64 secret's key bytes (tolerating missing padding, as the peers do)."""
    return base64.b64decode(text.removeprefix("whsec_") + "==")


@dataclass(frozen=True)
class Scenario:
    """One message, one verifier configuration, one expected outcome."""

    expect: str
    """``ok``, ``reject`` (a 401-class VerificationError) or ``config`` (ConfigurationError)."""
    secret: str | bytes = DEFAULT_SECRET
    """What the receiver is configured with."""
    key: bytes = field(default_factory=lambda: b64key(DEFAULT_SECRET))
    """The HMAC key the sender signs with."""
    msg_id: str = DEFAULT_ID
    payload: bytes = DEFAULT_PAYLOAD
    signed_at: int = 0
    """Seconds from :data:`NOW` (or an absolute time when ``absolute``)."""
    absolute: bool = False
    brand: str = "webhook"
    signature: tuple[str, ...] = (VALID,)
    header_id: str | None = None
    header_timestamp: str | int | None = None
    """A replacement header value: a string as is, an int as seconds from the signed time."""
    drop: tuple[str, ...] = ()
    tolerance: Any = TOLERANCE
    uppercase: bool = False


def rust(expect: str, **changes: Any) -> Scenario:
    """A scenario on the Rust suites' own message and secret."""
    facts = {"secret": RUST_SECRET, "key": b64key(RUST_SECRET), "msg_id": RUST_ID}
    return Scenario(expect, **(facts | {"payload": RUST_PAYLOAD} | changes))


SCENARIOS: dict[str, Scenario] = {
    "valid": Scenario("ok"),
    "valid svix-* headers": Scenario("ok", brand="svix"),
    "valid, secret with whsec_ prefix": Scenario("ok", secret="whsec_" + DEFAULT_SECRET),
    "valid, header names in capitals": Scenario("ok", uppercase=True),
    "missing id": Scenario("reject", drop=("id",)),
    "missing timestamp": Scenario("reject", drop=("timestamp",)),
    "missing signature": Scenario("reject", drop=("signature",)),
    "timestamp 'hello'": Scenario("reject", header_timestamp="hello"),
    "timestamp 'invalid timestamp'": Scenario("reject", header_timestamp="invalid timestamp"),
    "timestamp '161426533.0'": Scenario("reject", header_timestamp="161426533.0"),
    "timestamp '-161426533'": Scenario("reject", header_timestamp="-161426533"),
    "signature ...J1OA= (last byte changed)": Scenario(
        "reject", signature=("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=",)
    ),
    "signature ...LawDD (truncated)": Scenario(
        "reject", signature=("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLawdd",)
    ),
    "signature of another message": Scenario("reject", signature=(BAD_V1,)),
    "signature not base64": Scenario("reject", signature=("v1,dawfeoifkpqwoekfpqoekf",)),
    "signature with no version": Scenario("reject", signature=("BAD_SIG_NATURE",)),
    "signature 'v1,' only": Scenario("reject", signature=("v1,",)),
    "signature: first 8 characters": Scenario("reject", signature=(PARTIAL,)),
    "id replaced after signing (v2,...)": Scenario(
        "reject", header_id="v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    ),
    "id replaced after signing (invalid_signature)": Scenario(
        "reject", header_id="invalid_signature"
    ),
    "id replaced after signing (v1,invalid_signature)": Scenario(
        "reject", header_id="v1,invalid_signature"
    ),
    "timestamp 301 s old": Scenario("reject", signed_at=-TOLERANCE - 1),
    "timestamp 301 s ahead": Scenario("reject", signed_at=TOLERANCE + 1),
    "timestamp 300 s old, checked a moment later": Scenario("reject", signed_at=-TOLERANCE),
    "several signatures, one valid": Scenario("ok", signature=(BAD_V1, BAD_V2, VALID, BAD_V1)),
    "two signatures, valid one last": Scenario("ok", signature=(BAD_V1, VALID)),
    "unpadded secret, needs no padding": Scenario("ok", secret=DEFAULT_SECRET),
    "unpadded secret, needs one '='": Scenario(
        "ok", secret=DEFAULT_SECRET[:-1], key=b64key(DEFAULT_SECRET[:-1] + "=")
    ),
    "unpadded secret, needs two '='": Scenario(
        "ok", secret=DEFAULT_SECRET + "Br", key=b64key(DEFAULT_SECRET + "Br==")
    ),
    "unpadded secret with whsec_ prefix": Scenario(
        "ok", secret="whsec_" + DEFAULT_SECRET + "Br", key=b64key(DEFAULT_SECRET + "Br==")
    ),
    "empty payload": Scenario("ok", payload=b""),
    "tolerance 900, 600 s old": Scenario("ok", signed_at=-2 * TOLERANCE, tolerance=900),
    "tolerance 900, 600 s ahead": Scenario("ok", signed_at=2 * TOLERANCE, tolerance=900),
    "tolerance 60, 120 s old": Scenario("reject", signed_at=-120, tolerance=60),
    "tolerance 60, 120 s ahead": Scenario("reject", signed_at=120, tolerance=60),
    "tolerance 900, bad signature": Scenario(
        "reject", signature=("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLawdd",), tolerance=900
    ),
    "tolerance 900, timestamp moved 600 s after signing": Scenario(
        "reject", header_timestamp=-600, tolerance=900
    ),
    "huge tolerance, timestamp -1234": Scenario(
        "reject", signed_at=-1234, absolute=True, tolerance=10**10
    ),
    "huge tolerance, 300 s old": Scenario("ok", signed_at=-TOLERANCE, tolerance=10**10),
    "huge tolerance, 300 s ahead": Scenario("ok", signed_at=TOLERANCE, tolerance=10**10),
    "huge tolerance, now": Scenario("ok", tolerance=10**10),
    "huge tolerance, timestamp replaced by 2000-01-01": Scenario(
        "reject", header_timestamp="946684800", tolerance=10**10
    ),
    "tolerance -1": Scenario("config", tolerance=-1),
    "tolerance NaN": Scenario("config", tolerance=float("nan")),
    "tolerance null": Scenario("config", tolerance=None),
    "empty secret": Scenario("config", secret=""),
    "secret 'whsec_' only": Scenario("config", secret="whsec_"),
    "empty raw key": Scenario("config", secret=b""),
    "raw key bytes": Scenario("ok", secret=DEFAULT_SECRET.encode(), key=DEFAULT_SECRET.encode()),
    "whsec_ + base64 of the raw key": Scenario(
        "ok",
        secret="whsec_" + base64.b64encode(DEFAULT_SECRET.encode()).decode(),
        key=DEFAULT_SECRET.encode(),
    ),
    "raw key, signature 'invalid signature'": Scenario(
        "reject",
        secret=DEFAULT_SECRET.encode(),
        key=DEFAULT_SECRET.encode(),
        signature=("invalid", "signature"),
    ),
    "raw key, missing id": Scenario(
        "reject", secret=DEFAULT_SECRET.encode(), key=DEFAULT_SECRET.encode(), drop=("id",)
    ),
    "rust: valid, svix-*": rust("ok", brand="svix"),
    "rust: valid, webhook-*": rust("ok"),
    "rust: wrong signature, svix-*": rust(
        "reject", brand="svix", signature=("v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU=",)
    ),
    "rust: wrong signature, webhook-*": rust(
        "reject", signature=("v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU=",)
    ),
    "rust: 'v1,' only": rust("reject", signature=("v1,",)),
    "rust: first 8 characters": rust("reject", signature=(PARTIAL,)),
    "rust: 301 s old": rust("reject", signed_at=-TOLERANCE - 1),
    "rust: 301 s ahead": rust("reject", signed_at=TOLERANCE + 1),
    "rust: 301 s old, timestamp ignored": rust("ok", signed_at=-TOLERANCE - 1, tolerance=10**10),
    "rust: 301 s ahead, timestamp ignored": rust("ok", signed_at=TOLERANCE + 1, tolerance=10**10),
    "rust: timestamp +1 after signing": rust("reject", header_timestamp=1),
    "rust: timestamp -1": rust("reject", signed_at=-1, absolute=True),
    "rust: four signatures, one valid": rust(
        "ok",
        brand="svix",
        signature=(
            "v1,tFtCZ5RDCPxzWQRWXWPgrCgE2frDBe9gjpbWQxnVfsQ=",
            "v1,Mm7xgUVICxZfQ3bgf0h0Dof65L/IFx+PnZvnDWPCX6Q=",
            VALID,
            "v1,9DfC1c3eeOrXB6w/5dIDydLNQaEyww5KalE5jLBZucE=",
        ),
    ),
    "rust: three signatures, none valid": rust(
        "reject",
        brand="svix",
        signature=(
            "v1,tFtCZ5RDCPxzWQRWXWPgrCgE2frDBe9gjpbWQxnVfsQ=",
            "v1,Mm7xgUVICxZfQ3bgf0h0Dof65L/IFx+PnZvnDWPCX6Q=",
            "v1,9DfC1c3eeOrXB6w/5dIDydLNQaEyww5KalE5jLBZucE=",
        ),
    ),
    "rust: missing svix-id": rust("reject", brand="svix", drop=("id",)),
    "rust: missing svix-signature": rust("reject", brand="svix", drop=("signature",)),
    "rust: missing svix-timestamp": rust("reject", brand="svix", drop=("timestamp",)),
    "rust: empty secret": rust("config", secret=""),
    "rust: 'whsec_' only": rust("config", secret="whsec_"),
    "rust: empty raw key": rust("config", secret=b""),
}

# Which scenario each peer test runs, file by file. Tests run once per header set where the
# peer loops over both (Rust), so a name can appear twice.
PEER_TESTS: dict[str, tuple[str, ...]] = {
    "standard-webhooks libraries/python/tests/test_webhooks.py": (
        "empty secret", "empty raw key", "secret 'whsec_' only", "missing id",
        "missing timestamp", "timestamp 'hello'", "missing signature",
        "signature ...J1OA= (last byte changed)", "valid", "valid", "valid",
        "timestamp 301 s old", "timestamp 301 s ahead", "several signatures, one valid",
        "valid", "valid, secret with whsec_ prefix", "unpadded secret, needs no padding",
        "unpadded secret, needs one '='", "unpadded secret, needs two '='",
        "unpadded secret with whsec_ prefix",
    ),
    "standard-webhooks libraries/javascript/src/webhook.test.ts": (
        "empty secret", "secret 'whsec_' only", "missing id", "missing timestamp",
        "timestamp 'hello'", "missing signature", "signature not base64",
        "signature: first 8 characters", "signature 'v1,' only", "valid", "valid",
        "timestamp 301 s old", "timestamp 301 s ahead", "several signatures, one valid",
        "valid", "valid, secret with whsec_ prefix", "empty payload",
    ),
    "standard-webhooks libraries/go/webhook_test.go": (
        "valid", "missing id", "missing timestamp", "missing signature",
        "signature of another message", "signature 'v1,' only",
        "timestamp 300 s old, checked a moment later", "timestamp 301 s ahead",
        "several signatures, one valid", "huge tolerance, 300 s old",
        "huge tolerance, 300 s ahead", "huge tolerance, now",
        "huge tolerance, timestamp replaced by 2000-01-01", "valid",
        "valid, secret with whsec_ prefix", "empty secret", "secret 'whsec_' only",
        "empty raw key",
    ),
    "standard-webhooks libraries/csharp/StandardWebhooks.Tests/WebhookTest.cs": (
        "empty secret", "missing id", "missing timestamp", "missing signature",
        "signature ...LawDD (truncated)", "valid", "valid", "timestamp 301 s old",
        "timestamp 301 s ahead", "several signatures, one valid", "valid",
        "valid, secret with whsec_ prefix",
    ),
    "standard-webhooks libraries/java/src/test/java/com/standardwebhooks/WebhookTest.java": (
        "valid", "several signatures, one valid", "missing id", "missing timestamp",
        "missing signature", "id replaced after signing (v2,...)",
        "id replaced after signing (invalid_signature)",
        "id replaced after signing (v1,invalid_signature)", "timestamp 301 s old",
        "timestamp 301 s ahead", "valid", "valid, secret with whsec_ prefix",
        "valid, header names in capitals",
    ),
    "standard-webhooks libraries/php/tests/WebhookTest.php": (
        "valid", "valid", "signature of another message", "missing id", "missing timestamp",
        "missing signature", "timestamp 301 s old", "timestamp 301 s ahead",
        "several signatures, one valid", "valid", "valid, secret with whsec_ prefix",
        "timestamp '161426533.0'", "timestamp 'invalid timestamp'", "timestamp '-161426533'",
        "empty secret", "secret 'whsec_' only",
    ),
    "standard-webhooks libraries/ruby/spec/webhook_spec.rb": (
        "empty secret", "secret 'whsec_' only", "missing id", "missing timestamp",
        "missing signature", "signature ...LawDD (truncated)", "valid", "valid",
        "timestamp 301 s old", "timestamp 301 s ahead", "timestamp 'hello'",
        "several signatures, one valid", "valid", "valid, secret with whsec_ prefix",
    ),
    "standard-webhooks libraries/elixir/test/standard_webhooks_test.exs": (
        "empty raw key", "raw key bytes", "whsec_ + base64 of the raw key",
        "raw key, signature 'invalid signature'", "raw key, missing id",
    ),
    "standard-webhooks libraries/rust/src/lib.rs": (
        "rust: valid, svix-*", "rust: valid, webhook-*", "rust: wrong signature, svix-*",
        "rust: wrong signature, webhook-*", "rust: 'v1,' only", "rust: first 8 characters",
        "rust: 301 s old", "rust: 301 s ahead", "rust: 301 s old, timestamp ignored",
        "rust: 301 s ahead, timestamp ignored", "rust: timestamp +1 after signing",
        "rust: four signatures, one valid", "rust: three signatures, none valid",
        "rust: missing svix-id", "rust: missing svix-signature", "rust: missing svix-timestamp",
    ),
    "svix-webhooks python/tests/test_webhooks.py": (
        "missing id", "missing timestamp", "timestamp 'hello'", "missing signature",
        "signature ...J1OA= (last byte changed)", "valid svix-* headers", "valid",
        "timestamp 301 s old", "timestamp 301 s ahead", "several signatures, one valid",
        "valid svix-* headers", "valid, secret with whsec_ prefix",
    ),
    "svix-webhooks javascript/src/webhook.test.ts": (
        "empty secret", "missing id", "missing timestamp", "timestamp 'hello'",
        "missing signature", "signature not base64", "signature 'v1,' only",
        "valid svix-* headers", "valid", "timestamp 301 s old", "timestamp 301 s ahead",
        "several signatures, one valid", "valid, secret with whsec_ prefix",
    ),
    "svix-webhooks go/webhook_test.go": (
        "valid svix-* headers", "valid", "missing id", "missing timestamp",
        "missing signature", "signature of another message", "signature 'v1,' only",
        "timestamp 300 s old, checked a moment later", "timestamp 301 s ahead",
        "several signatures, one valid", "huge tolerance, 300 s old",
        "huge tolerance, 300 s ahead", "huge tolerance, now",
        "huge tolerance, timestamp replaced by 2000-01-01",
        "valid, secret with whsec_ prefix", "empty secret", "secret 'whsec_' only",
    ),
    "svix-webhooks csharp/Svix.Tests/WebhookTest.cs": (
        "missing id", "missing timestamp", "missing signature",
        "signature ...LawDD (truncated)", "valid svix-* headers", "valid",
        "timestamp 301 s old", "timestamp 301 s ahead", "several signatures, one valid",
        "two signatures, valid one last", "valid, secret with whsec_ prefix",
    ),
    "svix-webhooks java/lib/src/test/com/svix/test/WebhookTest.java": (
        "valid svix-* headers", "valid", "several signatures, one valid", "missing id",
        "missing timestamp", "missing signature", "id replaced after signing (v2,...)",
        "id replaced after signing (invalid_signature)",
        "id replaced after signing (v1,invalid_signature)", "timestamp 301 s old",
        "timestamp 301 s ahead", "valid, secret with whsec_ prefix",
    ),
    "svix-webhooks kotlin/lib/src/test/com/svix/kotlin/WebhookTest.kt": (
        "valid svix-* headers", "valid", "several signatures, one valid", "missing id",
        "missing timestamp", "missing signature", "id replaced after signing (v2,...)",
        "id replaced after signing (invalid_signature)",
        "id replaced after signing (v1,invalid_signature)", "timestamp 301 s old",
        "timestamp 301 s ahead", "valid, secret with whsec_ prefix",
    ),
    "svix-webhooks php/tests/WebhookTest.php": (
        "valid svix-* headers", "valid", "signature of another message",
        "signature with no version", "missing id", "missing timestamp", "missing signature",
        "timestamp 301 s old", "timestamp 301 s ahead", "tolerance 900, 600 s old",
        "tolerance 60, 120 s old", "tolerance 900, 600 s ahead", "tolerance 60, 120 s ahead",
        "tolerance 900, bad signature", "tolerance 900, timestamp moved 600 s after signing",
        "huge tolerance, timestamp -1234", "tolerance -1", "tolerance NaN", "tolerance null",
        "several signatures, one valid", "valid, secret with whsec_ prefix",
        "timestamp '161426533.0'", "timestamp 'invalid timestamp'", "timestamp '-161426533'",
    ),
    "svix-webhooks ruby/spec/webhook_spec.rb": (
        "empty secret", "secret 'whsec_' only", "missing id", "missing timestamp",
        "missing signature", "signature ...LawDD (truncated)", "valid svix-* headers",
        "valid", "timestamp 301 s old", "timestamp 301 s ahead", "timestamp 'hello'",
        "several signatures, one valid", "valid, secret with whsec_ prefix",
        "tolerance 900, 600 s old", "tolerance 60, 120 s old", "tolerance 900, 600 s ahead",
        "tolerance 60, 120 s ahead", "tolerance 900, bad signature",
        "tolerance 900, timestamp moved 600 s after signing", "huge tolerance, timestamp -1234",
        "tolerance -1", "tolerance NaN", "tolerance null", "tolerance 900, 600 s old",
        "empty payload",
    ),
    "svix-webhooks rust/src/webhooks.rs": (
        "rust: valid, svix-*", "rust: valid, webhook-*", "rust: wrong signature, svix-*",
        "rust: wrong signature, webhook-*", "rust: 'v1,' only", "rust: 'v1,' only",
        "rust: first 8 characters", "rust: first 8 characters", "rust: 301 s old",
        "rust: 301 s ahead", "rust: 301 s old, timestamp ignored",
        "rust: 301 s ahead, timestamp ignored", "rust: timestamp +1 after signing",
        "rust: timestamp -1", "rust: four signatures, one valid",
        "rust: three signatures, none valid", "rust: missing svix-id",
        "rust: missing svix-signature", "rust: missing svix-timestamp", "rust: empty secret",
        "rust: 'whsec_' only", "rust: empty raw key",
    ),
}  # fmt: skip

# The peers' "sign" tests: (source, secret, msg id, timestamp, payload, expected signature).
SIGN_VECTORS: tuple[tuple[str, str, str, int, bytes, str], ...] = (
    *(
        (
            source,
            "whsec_" + DEFAULT_SECRET,
            DEFAULT_ID,
            1614265330,
            DEFAULT_PAYLOAD,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        )
        for source in (
            "standard-webhooks libraries/python/tests/test_webhooks.py",
            "standard-webhooks libraries/javascript/src/webhook.test.ts",
            "standard-webhooks libraries/go/webhook_test.go",
            "standard-webhooks libraries/csharp/StandardWebhooks.Tests/WebhookTest.cs",
            "standard-webhooks libraries/java/src/test/java/com/standardwebhooks/WebhookTest.java",
            "standard-webhooks libraries/php/tests/WebhookTest.php",
            "standard-webhooks libraries/ruby/spec/webhook_spec.rb",
            "svix-webhooks python/tests/test_webhooks.py",
            "svix-webhooks javascript/src/webhook.test.ts",
            "svix-webhooks go/webhook_test.go",
            "svix-webhooks csharp/Svix.Tests/WebhookTest.cs",
            "svix-webhooks java/lib/src/test/com/svix/test/WebhookTest.java",
            "svix-webhooks kotlin/lib/src/test/com/svix/kotlin/WebhookTest.kt",
            "svix-webhooks php/tests/WebhookTest.php",
            "svix-webhooks ruby/spec/webhook_spec.rb",
        )
    ),
    *(
        (source, RUST_SECRET, RUST_ID, 1649367553, RUST_PAYLOAD, RUST_SIGNATURE)
        for source in (
            "standard-webhooks libraries/rust/src/lib.rs",
            "svix-webhooks rust/src/webhooks.rs",
        )
    ),
    *(
        ("svix-webhooks csharp/Svix.Tests/WebhookTest.cs", "whsec_" + DEFAULT_SECRET, DEFAULT_ID,
         1614265330, b"a" * size, expected)
        for size, expected in (
            (1024 * 1024, "v1,txpEUxqWZJ5nteTnymUVa+7C4NHpBeXJ6CsBAW0c3/A="),
            (256 * 1024, "v1,Mw4Pe2WgApuT7NSqnSq0PQPV9gbLdggCl9B865x5Xh0="),
            (256 * 1024 - 1, "v1,NTItnqyWMoFhk2Bbe5V/BMdcFRWgcSQaTgqLHX7FC7c="),
        )
    ),
)  # fmt: skip

CASES = [
    pytest.param(name, id=f"{source.split()[0]}:{source.split('/')[-1]}:{index}:{name}")
    for source, names in PEER_TESTS.items()
    for index, name in enumerate(names)
]


def _signature(scenario: Scenario, timestamp: int) -> str:
    signed = f"{scenario.msg_id}.{timestamp}.".encode() + scenario.payload
    digest = hmac.new(scenario.key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def _headers(scenario: Scenario) -> dict[str, str]:
    timestamp = scenario.signed_at if scenario.absolute else NOW + scenario.signed_at
    valid = _signature(scenario, timestamp)
    parts = [valid if p == VALID else valid[:8] if p == PARTIAL else p for p in scenario.signature]
    stamp = scenario.header_timestamp
    values = {
        "id": scenario.header_id if scenario.header_id is not None else scenario.msg_id,
        "timestamp": str(timestamp + stamp) if isinstance(stamp, int) else stamp or str(timestamp),
        "signature": " ".join(parts),
    }
    headers = {}
    for part, value in values.items():
        if part not in scenario.drop:
            name = f"{scenario.brand}-{part}"
            headers[name.upper() if scenario.uppercase else name] = value
    return headers


def verify(scenario: Scenario) -> str:
    """Run one scenario through :class:`Authenticator`: ``ok``, ``reject`` or ``config``."""
    try:
        authenticator = Authenticator(
            signing_secrets=scenario.secret,
            tolerance=scenario.tolerance,
            clock=lambda: NOW + 0.5,
        )
    except ConfigurationError:
        return "config"
    try:
        authenticator.verify(Headers(_headers(scenario)), scenario.payload)
    except VerificationError:
        return "reject"
    return "ok"


def test_every_scenario_is_used_and_every_row_names_one() -> None:
    used = {name for names in PEER_TESTS.values() for name in names}
    assert used == SCENARIOS.keys()


@pytest.mark.parametrize("name", CASES)
def test_peer_case(name: str) -> None:
    scenario = SCENARIOS[name]
    assert verify(scenario) == scenario.expect


@pytest.mark.parametrize(
    ("secret", "msg_id", "timestamp", "payload", "expected"),
    [pytest.param(*row[1:], id=f"{row[0]}:{len(row[4])}") for row in SIGN_VECTORS],
)
def test_peer_sign_vector(
    secret: str, msg_id: str, timestamp: int, payload: bytes, expected: str
) -> None:
    headers = sign(payload, secret, msg_id=msg_id, timestamp=timestamp)
    assert headers["webhook-signature"] == expected
    at_that_time = Authenticator(signing_secrets=secret, clock=lambda: timestamp + 0.5)
    assert at_that_time.verify(Headers(headers), payload) == "signing-secret"
    with pytest.raises(VerificationError):
        at_that_time.verify(Headers(headers), payload + b" ")


def test_how_many_peer_cases_are_ported() -> None:
    """The figure the docs quote; update both together."""
    assert (len(CASES), len(SIGN_VECTORS)) == (279, 20)
