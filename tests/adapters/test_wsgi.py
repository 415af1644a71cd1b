"""The WSGI adapter in-process: raw bytes in, the receiver's reply out, the rest untouched."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.test import Client, EnvironBuilder

from codat_webhooks import ConfigurationError, Receiver
from codat_webhooks.stores import MemoryStore
from codat_webhooks.testing import sample_body, sign
from codat_webhooks.wsgi import WebhookApp, WebhookMiddleware

from .conftest import AUTH, LIMIT, SECRET, Recorder

PATH = "/webhooks/codat"


def hello_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-App", "inner")])
    return [b"inner app: ", environ["PATH_INFO"].encode()]


def call(app: Any, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    seen: list[Any] = []
    chunks = app(environ, lambda status, headers, exc_info=None: seen.extend([status, headers]))
    return seen[0], seen[1], b"".join(chunks)


def outcome(response: Any) -> str:
    """The ``outcome`` of a reply read through a framework's test client."""
    return str(json.loads(response.data)["outcome"])


def environ_for(body: bytes = b"", /, **overrides: Any) -> dict[str, Any]:
    environ = EnvironBuilder(path=PATH, method="POST", data=body).get_environ()
    environ["HTTP_AUTHORIZATION"] = AUTH
    environ.update(overrides)
    return environ


class EndlessStream:
    """A chunked upload that never ends; counts what the adapter pulled from it."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def read(self, size: int = -1) -> bytes:
        chunk = b" " * (size if size > 0 else 1024)
        self.read_bytes += len(chunk)
        return chunk


class Untouchable:
    def read(self, size: int = -1) -> bytes:
        raise AssertionError("the adapter read a body it should have refused unread")


def test_every_seed_is_processed_from_its_raw_bytes(
    seed_body: bytes, receiver: Receiver, recorder: Recorder
) -> None:
    # Signed over the exact bytes, pretty-printed as in Codat's docs: any re-serialisation fails.
    headers = sign(seed_body, SECRET)
    response = Client(WebhookApp(receiver)).post(PATH, data=seed_body, headers=headers)
    assert response.status_code == 200, response.data
    assert response.json == {
        "outcome": "processed",
        "key": headers["webhook-id"],
        "detail": "processed",
    }
    assert ("sync on_alert", headers["webhook-id"]) in recorder.calls


def test_sync_and_async_hooks_run_and_duplicates_do_not(
    receiver: Receiver, recorder: Recorder
) -> None:
    client = Client(WebhookMiddleware(hello_app, receiver))
    body = sample_body("DataConnectionStatusChanged")
    first = client.post(PATH, data=body, headers={"Authorization": AUTH})
    again = client.put(PATH, data=body, headers={"Authorization": AUTH})
    assert (outcome(first), outcome(again)) == ("processed", "duplicate")
    assert recorder.kinds() == ["async status changed", "sync on_alert"]
    assert first.headers["Content-Length"] == str(len(first.data))


def test_oversize_content_length_is_refused_before_reading(
    receiver: Receiver, recorder: Recorder, store: MemoryStore
) -> None:
    environ = environ_for(CONTENT_LENGTH=str(LIMIT + 1), **{"wsgi.input": Untouchable()})
    status, headers, body = call(WebhookApp(receiver), environ)
    assert status == "413 Request Entity Too Large"
    assert json.loads(body)["outcome"] == "too_large"
    assert ("Content-Length", str(len(body))) in headers
    assert recorder.calls == [("rejected", "too_large")]
    assert store.find() == []


def test_oversize_chunked_body_is_cut_off_at_the_limit(
    receiver: Receiver, recorder: Recorder, store: MemoryStore
) -> None:
    stream = EndlessStream()
    environ = environ_for(**{"wsgi.input": stream, "wsgi.input_terminated": True})
    environ.pop("CONTENT_LENGTH", None)
    environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    status, _, body = call(WebhookApp(receiver), environ)
    assert status.startswith("413")
    assert json.loads(body)["outcome"] == "too_large"
    assert LIMIT < stream.read_bytes <= LIMIT + 65_536
    assert recorder.calls == [("rejected", "too_large")]
    assert store.find() == []


def test_chunked_body_within_the_limit_is_read_to_the_end(
    receiver: Receiver, recorder: Recorder
) -> None:
    body = sample_body("Data sync completed")
    environ = environ_for(**{"wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True})
    environ.pop("CONTENT_LENGTH", None)
    status, _, reply = call(WebhookApp(receiver), environ)
    assert (status, json.loads(reply)["outcome"]) == ("200 OK", "processed")
    assert recorder.kinds() == ["sync on_alert"]


def test_truncated_body_never_reaches_the_receiver(
    receiver: Receiver, recorder: Recorder, store: MemoryStore
) -> None:
    body = sample_body("Data sync completed")
    environ = environ_for(CONTENT_LENGTH=str(len(body) + 10), **{"wsgi.input": io.BytesIO(body)})
    status, _, _ = call(WebhookApp(receiver), environ)
    assert status == "400 Bad Request"
    assert recorder.calls == []
    assert store.find() == []


def test_wrong_method_is_answered_by_the_receiver(receiver: Receiver) -> None:
    response = Client(WebhookApp(receiver)).get(PATH)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST, PUT"


class ClosingBody:
    def __init__(self) -> None:
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        yield b"streamed"

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("path", ["/", "/webhooks/codat/x", "/webhooks/codatx", "/webhooks"])
def test_other_paths_get_the_exact_environ_callable_and_iterable(
    receiver: Receiver, path: str
) -> None:
    seen: dict[str, Any] = {}
    body = ClosingBody()

    def app(environ: dict[str, Any], start_response: Any) -> ClosingBody:
        seen.update(environ=environ, start_response=start_response)
        return body

    environ = environ_for(b"x" * (LIMIT * 2), PATH_INFO=path)
    start_response = object()
    result = WebhookMiddleware(app, receiver)(environ, start_response)  # type: ignore[arg-type]
    assert result is body
    assert seen["environ"] is environ
    assert seen["start_response"] is start_response
    assert environ["wsgi.input"].tell() == 0  # the body was left for the app


def test_mounted_under_a_prefix_and_behind_dispatcher(
    receiver: Receiver, recorder: Recorder
) -> None:
    mounted = DispatcherMiddleware(
        hello_app,
        {"/api": WebhookMiddleware(hello_app, receiver), "/hooks": WebhookApp(receiver)},
    )
    client = Client(mounted)
    for url in ("/api/webhooks/codat", "/hooks"):
        body = sample_body("Sync Completed")
        response = client.post(url, data=body, headers={"Authorization": AUTH})
        assert outcome(response) == "processed", url
    assert client.post("/webhooks/codat").data == b"inner app: /webhooks/codat"
    assert client.get("/api/elsewhere").data == b"inner app: /elsewhere"
    assert recorder.kinds() == ["sync on_alert", "sync on_alert"]


def test_a_custom_path_and_a_bad_one(receiver: Receiver) -> None:
    client = Client(WebhookMiddleware(hello_app, receiver, path="/codat/hooks"))
    response = client.post(
        "/codat/hooks", data=sample_body("Sync Failed"), headers={"Authorization": AUTH}
    )
    assert outcome(response) == "processed"
    with pytest.raises(ConfigurationError):
        WebhookMiddleware(hello_app, receiver, path="webhooks")
