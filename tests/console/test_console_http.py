"""The console over real HTTP (a werkzeug server on loopback, httpx as the client): who may
see it, CSRF, escaping, filters, pagination, replay."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

import httpx
import pytest
from werkzeug.test import Client

from codat_webhooks import Receiver
from codat_webhooks.console import Console
from codat_webhooks.errors import ConfigurationError
from codat_webhooks.stores import Entry, MemoryStore, RedisStore, State
from codat_webhooks.testing import sample_body
from tests.adapters.servers import free_port

from .helpers import PASSWORD, Handler, csrf_of, login, make_console, park, serving


@pytest.fixture
def setup() -> tuple[Console, MemoryStore, Handler]:
    return make_console(page_size=3)


@pytest.fixture
def base(setup: tuple[Console, MemoryStore, Handler]) -> Iterator[str]:
    with serving(setup[0]) as url:
        yield url


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=20) as http:
        yield http


@pytest.fixture
def operator(client: httpx.Client, base: str) -> httpx.Client:
    assert login(client, base).status_code == 303
    return client


def failed(store: MemoryStore, key: str, **fields: object) -> None:
    body = sample_body("Sync Failed")
    entry = Entry(key, hashlib.sha256(body).hexdigest(), body, (), **fields)  # type: ignore[arg-type]
    token = store.claim(entry, lease=30).token
    store.release(key, token, error="RuntimeError: handler bug")


# --- credentials -------------------------------------------------------------------------------


def test_refuses_to_start_without_a_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CODAT_WEBHOOKS_CONSOLE_PASSWORD", raising=False)
    receiver = Receiver(insecure=True, store=MemoryStore(), load_entrypoints=False)
    with pytest.raises(ConfigurationError, match="operator password"):
        Console(receiver)
    monkeypatch.setenv("CODAT_WEBHOOKS_CONSOLE_PASSWORD", PASSWORD)
    assert not Console(receiver).insecure
    assert Console(receiver, insecure=True, password=None).insecure is False  # env still counts


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short", "12 characters"),
        ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "signing secret"),
        ("codat-credential-xyz", "Authorization"),  # Codat's value without "Bearer "
        ("Bearer codat-credential-xyz", "Authorization"),
    ],
)
def test_refuses_codat_credentials_and_short_passwords(password: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        make_console(password=password)


def test_missing_credential_redirects_pages_and_refuses_actions(
    client: httpx.Client, base: str, setup: tuple[Console, MemoryStore, Handler]
) -> None:
    failed(setup[1], "k1")
    page = client.get(f"{base}/")
    assert (page.status_code, page.headers["location"]) == (303, "/login")
    assert client.get(f"{base}/delivery", params={"key": "k1"}).status_code == 303
    refused = client.post(f"{base}/replay", data={"key": "k1", "csrf": "x"})
    assert refused.status_code == 403
    assert setup[1].get("k1").state is State.FAILED  # type: ignore[union-attr]


def test_wrong_password_is_refused_and_grants_nothing(client: httpx.Client, base: str) -> None:
    answer = login(client, base, password="not-the-operator-password")
    assert answer.status_code == 401
    assert "wrong password" in answer.text
    assert client.get(f"{base}/").status_code == 303


def test_a_forged_or_tampered_cookie_is_not_a_session(operator: httpx.Client, base: str) -> None:
    cookie = operator.cookies["codat_webhooks_console"]
    payload, _, signature = cookie.rpartition(".")
    forgeries = [f"{payload}.{'0' * len(signature)}", f"{payload[:-4]}AAAA.{signature}", "x"]
    with httpx.Client(timeout=20) as fresh:

        def status(value: str) -> int:
            return fresh.get(
                f"{base}/", headers={"Cookie": f"codat_webhooks_console={value}"}
            ).status_code

        assert status(cookie) == 200  # the genuine one, sent the same way, is a session
        assert [status(forged) for forged in forgeries] == [303, 303, 303]


def test_login_sets_a_new_strict_http_only_session(client: httpx.Client, base: str) -> None:
    client.get(f"{base}/login")
    before = client.cookies["codat_webhooks_console"]
    answer = login(client, base)
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert client.cookies["codat_webhooks_console"] != before  # no session fixation
    assert client.get(f"{base}/").status_code == 200


def test_login_form_itself_needs_its_csrf_token(client: httpx.Client, base: str) -> None:
    client.get(f"{base}/login")
    answer = client.post(f"{base}/login", data={"password": PASSWORD})
    assert answer.status_code == 403
    assert client.get(f"{base}/").status_code == 303


def test_every_answer_carries_the_security_headers(client: httpx.Client, base: str) -> None:
    for answer in (client.get(f"{base}/login"), client.get(f"{base}/nowhere")):
        policy = answer.headers["content-security-policy"]
        assert "default-src 'none'" in policy
        assert "frame-ancestors 'none'" in policy
        assert "script-src" not in policy  # default-src 'none': no script at all
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["referrer-policy"] == "no-referrer"


# --- CSRF --------------------------------------------------------------------------------------


def test_replay_without_the_csrf_token_is_refused(
    operator: httpx.Client, base: str, setup: tuple[Console, MemoryStore, Handler]
) -> None:
    failed(setup[1], "k1")
    assert operator.post(f"{base}/replay", data={"key": "k1"}).status_code == 403
    wrong = operator.post(f"{base}/replay", data={"key": "k1", "csrf": "0" * 64})
    assert wrong.status_code == 403
    assert "CSRF" in wrong.text
    assert setup[1].get("k1").state is State.FAILED  # type: ignore[union-attr]
    assert setup[2].calls == []


def test_a_csrf_token_from_another_session_is_refused(
    operator: httpx.Client, base: str, setup: tuple[Console, MemoryStore, Handler]
) -> None:
    failed(setup[1], "k1")
    with httpx.Client(timeout=20) as other:
        login(other, base)
        foreign = csrf_of(other.get(f"{base}/").text)
    assert operator.post(f"{base}/replay", data={"key": "k1", "csrf": foreign}).status_code == 403
    assert setup[1].get("k1").state is State.FAILED  # type: ignore[union-attr]


# --- pages -------------------------------------------------------------------------------------


def test_a_body_and_key_with_markup_are_shown_as_text(
    operator: httpx.Client, base: str, setup: tuple[Console, MemoryStore, Handler]
) -> None:
    park(setup[1], "<img src=x onerror=alert(1)>", kind="<b>type</b>")
    listing = operator.get(f"{base}/").text
    assert "<img src=x" not in listing
    assert "&lt;img src=x onerror=alert(1)&gt;" in listing
    assert "&lt;b&gt;type&lt;/b&gt;" in listing
    detail = operator.get(f"{base}/delivery", params={"key": "<img src=x onerror=alert(1)>"})
    assert detail.status_code == 200
    assert "<script>" not in detail.text
    assert "&lt;script&gt;document.title" in detail.text
    assert "[redacted]" in detail.text


def test_counts_show_failed_and_parked_prominently(
    operator: httpx.Client, base: str, setup: tuple[Console, MemoryStore, Handler]
) -> None:
    failed(setup[1], "f1")
    park(setup[1], "p1")
    park(setup[1], "p2")
    page = operator.get(f"{base}/").text
    counts = dict(re.findall(r'id="count-(\w+)".*?class="number">(\d+)<', page, re.S))
    assert counts == {"queued": "0", "processing": "0", "done": "0", "failed": "1", "parked": "2"}
    assert 'class="count failed alarm"' in page
    assert 'class="count parked alarm"' in page
    assert 'class="count done"' in page


def keys_of(page: str) -> list[str]:
    return re.findall(r'class="key" href="[^"]*">([^<]*)<', page)


def test_filters_by_state_type_company_and_time(
    operator: httpx.Client, base: str, setup: tuple[Console, MemoryStore, Handler]
) -> None:
    failed(setup[1], "f1", kind="Sync Failed", company_id="c-1")
    park(setup[1], "p1", kind="Other", company_id="c-2")

    def get(**params: str) -> list[str]:
        return keys_of(operator.get(f"{base}/", params=params).text)

    assert set(get()) == {"f1", "p1"}
    assert get(state="failed") == ["f1"]
    assert get(type="Other") == ["p1"]
    assert get(company="c-1") == ["f1"]
    assert get(company="c-1", state="parked") == []
    assert set(get(since="2000-01-01T00:00")) == {"f1", "p1"}
    assert get(before="2000-01-01T00:00") == []
    assert operator.get(f"{base}/", params={"state": "bogus"}).status_code == 400
    assert operator.get(f"{base}/", params={"since": "yesterday"}).status_code == 400


def test_pages_follow_the_store_cursor_without_gaps_or_repeats(
    operator: httpx.Client, base: str, setup: tuple[Console, MemoryStore, Handler]
) -> None:
    for number in range(8):
        park(setup[1], f"k{number}")
    seen: list[list[str]] = []
    url = f"{base}/?state=parked"
    while True:
        page = operator.get(url).text
        seen.append(keys_of(page))
        found = re.search(r'href="\./(\?[^"]*)" id="next-page"', page)
        if found is None:
            break
        url = f"{base}/" + found.group(1).replace("&amp;", "&")
        assert "state=parked" in url  # the filters stay on every page
    assert [len(page) for page in seen] == [3, 3, 2]
    flat = [key for page in seen for key in page]
    assert sorted(flat) == [f"k{n}" for n in range(8)]
    assert operator.get(f"{base}/", params={"page": "garbage!"}).status_code == 400


def test_detail_of_an_unknown_key_is_404(operator: httpx.Client, base: str) -> None:
    assert operator.get(f"{base}/delivery", params={"key": "nope"}).status_code == 404


# --- replay ------------------------------------------------------------------------------------


def test_replay_runs_the_applications_handlers_and_marks_done(
    operator: httpx.Client, base: str, setup: tuple[Console, MemoryStore, Handler]
) -> None:
    failed(setup[1], "f1")
    detail = operator.get(f"{base}/delivery", params={"key": "f1"})
    assert "on_alert</code> — Handler" in detail.text
    answer = operator.post(f"{base}/replay", data={"key": "f1", "csrf": csrf_of(detail.text)})
    assert answer.status_code == 303
    assert setup[2].calls == ["f1"]
    assert setup[1].get("f1").state is State.DONE  # type: ignore[union-attr]
    shown = operator.get(base + answer.headers["location"]).text
    assert "Replayed: processed" in shown


def replay_a_failing_delivery(
    operator: httpx.Client, base: str, setup: tuple[Console, MemoryStore, Handler]
) -> str:
    """Replay ``f1`` (failed) from the console while its handler still fails; the page shown."""
    failed(setup[1], "f1")
    setup[2].broken = True
    csrf = csrf_of(operator.get(f"{base}/").text)
    answer = operator.post(f"{base}/replay", data={"key": "f1", "csrf": csrf})
    return operator.get(base + answer.headers["location"]).text


def test_a_failing_replay_stays_failed_with_its_error(
    operator: httpx.Client, base: str, setup: tuple[Console, MemoryStore, Handler]
) -> None:
    shown = replay_a_failing_delivery(operator, base, setup)
    assert setup[1].get("f1").state is State.FAILED  # type: ignore[union-attr]
    assert "handler bug &lt;b&gt;boom&lt;/b&gt;" in shown


def test_a_failed_replay_is_shown_as_a_failure_not_a_success(
    operator: httpx.Client, base: str, setup: tuple[Console, MemoryStore, Handler]
) -> None:
    shown = replay_a_failing_delivery(operator, base, setup)
    [banner] = re.findall(r'<p class="([a-z]+)" id="replayed"[^>]*>([^<]*)</p>', shown)
    assert banner[0] == "problem", "the red banner of a problem, not the green notice"
    assert banner[1].startswith("Replay failed (failed): the delivery is failed again")
    assert "Replayed:" not in shown
    setup[2].broken = False
    csrf = csrf_of(operator.get(f"{base}/").text)
    again = operator.post(f"{base}/replay", data={"key": "f1", "csrf": csrf})
    fixed = operator.get(base + again.headers["location"]).text
    assert '<p class="notice" id="replayed" role="status">Replayed: processed</p>' in fixed


def test_replay_is_refused_when_no_plugin_would_handle_it() -> None:
    receiver = Receiver(insecure=True, store=MemoryStore(), load_entrypoints=False)
    console = Console(receiver, password=PASSWORD)
    failed(receiver.store, "f1")  # type: ignore[arg-type]
    with serving(console) as base, httpx.Client(timeout=20) as http:
        login(http, base)
        detail = http.get(f"{base}/delivery", params={"key": "f1"}).text
        assert 'id="replay" disabled' in detail
        answer = http.post(f"{base}/replay", data={"key": "f1", "csrf": csrf_of(detail)})
        assert answer.status_code == 409
        assert "refused: no plugin implements" in answer.text
    assert receiver.store.get("f1").state is State.FAILED  # type: ignore[union-attr]


# --- without a password ------------------------------------------------------------------------


def test_insecure_console_answers_loopback_only() -> None:
    console, store, _ = make_console(password=None, insecure=True)
    park(store, "p1")
    with serving(console) as base, httpx.Client(timeout=20, follow_redirects=True) as http:
        assert "p1" in keys_of(http.get(f"{base}/").text)
    remote = Client(console).get("/", environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert remote.status_code == 403


def test_mounted_under_a_prefix_links_and_redirects_stay_inside_it() -> None:
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    console, store, _ = make_console()
    park(store, "p1")

    def rest(environ: object, start_response: object) -> list[bytes]:
        start_response("404 Not Found", [])  # type: ignore[operator]
        return [b"the app"]

    mounted = DispatcherMiddleware(rest, {"/ops/console": console})
    with serving(mounted) as base, httpx.Client(timeout=20) as http:
        bare = http.get(f"{base}/ops/console")
        assert (bare.status_code, bare.headers["location"]) == (308, "/ops/console/")
        assert http.get(f"{base}/ops/console/").headers["location"] == "/ops/console/login"
        form = http.get(f"{base}/ops/console/login")
        assert "Path=/ops/console/" in form.headers["set-cookie"]
        done = http.post(
            f"{base}/ops/console/login", data={"csrf": csrf_of(form.text), "password": PASSWORD}
        )
        assert done.headers["location"] == "/ops/console/"
        assert "p1" in keys_of(http.get(f"{base}/ops/console/").text)


def test_a_store_that_does_not_answer_is_a_503_page() -> None:
    # A Redis store whose server is not there (nothing listens on the port): every query fails.
    store = RedisStore.from_url(f"redis://127.0.0.1:{free_port()}/0")
    receiver = Receiver(insecure=True, store=store, load_entrypoints=False)
    console = Console(receiver, password=PASSWORD)
    with serving(console) as base, httpx.Client(timeout=20) as http:
        login(http, base)
        answer = http.get(f"{base}/")
    assert answer.status_code == 503
    assert "the store did not answer" in answer.text
    assert answer.headers["x-frame-options"] == "DENY"
