"""The console's WSGI application: routing, the operator's session, and the four pages.

Every response carries a strict Content-Security-Policy (no script at all, styles only from
the console itself), refuses framing and sends no referrer. Every page is rendered by Jinja2
with autoescaping on, so a stored body (attacker-controlled text) shows as text. Every POST
needs the CSRF token bound to the session, and cookies are ``SameSite=Strict``.
"""

from __future__ import annotations

import ipaddress
import os
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

import jinja2
from werkzeug.exceptions import Forbidden, HTTPException, ServiceUnavailable
from werkzeug.routing import Map, Rule
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from .._logging import library_logger
from ..errors import ConfigurationError, StoreError, VerificationError
from ..headers import Headers
from ..receiver import Receiver
from ..replaying import replaying_receiver
from ._session import Session, Signer, same_secret
from .asgi import WsgiOnThreads
from .views import Views

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["ENV_PASSWORD", "Console"]

logger = library_logger("codat_webhooks.console")

ENV_PASSWORD = "CODAT_WEBHOOKS_CONSOLE_PASSWORD"  # noqa: S105 - the variable's name, not a secret
COOKIE = "codat_webhooks_console"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
MIN_PASSWORD = 12


class Console:
    """The console for ``receiver``'s store and plugins, as a WSGI application.

    ``password`` (default: ``$CODAT_WEBHOOKS_CONSOLE_PASSWORD``) is the operator's, never
    Codat's ``Authorization`` value or signing secret: the console refuses those. Without one it
    refuses to start, unless ``insecure=True``, and then it answers only loopback clients.
    ``secret_key`` signs sessions (default: derived from the password, so every worker of a
    deployment accepts the same cookies).
    """

    def __init__(
        self,
        receiver: Receiver,
        *,
        password: str | None = None,
        secret_key: bytes | None = None,
        insecure: bool = False,
        page_size: int = 50,
        session_ttl: float = 8 * 3600,
    ) -> None:
        password = password if password is not None else os.environ.get(ENV_PASSWORD) or None
        if password is None and not insecure:
            raise ConfigurationError(
                f"the console needs an operator password: pass password=... or set {ENV_PASSWORD}"
                " (insecure=True serves it without one, to loopback clients only)"
            )
        if password is not None:
            _check_password(receiver, password)
        if page_size < 1:
            raise ConfigurationError("page_size must be at least 1")
        self.receiver = receiver
        self.insecure = password is None
        self._password = password
        if secret_key is not None:
            self._signer = Signer(secret_key, ttl=session_ttl)
        elif password is not None:
            self._signer = Signer.for_password(password, ttl=session_ttl)
        else:
            self._signer = Signer(os.urandom(32), ttl=session_ttl)
        templates = jinja2.Environment(
            loader=jinja2.PackageLoader("codat_webhooks.console", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self._views = Views(
            templates, receiver.store, page_size=page_size, retries=receiver.retries
        )
        self._replayer: Receiver | None = None
        self._replayer_lock = threading.Lock()
        self._urls = Map(
            [
                Rule("/", endpoint="deliveries", methods=["GET"]),
                Rule("/delivery", endpoint="delivery", methods=["GET"]),
                Rule("/replay", endpoint="replay", methods=["POST"]),
                Rule("/login", endpoint="login", methods=["GET", "POST"]),
                Rule("/logout", endpoint="logout", methods=["POST"]),
                Rule("/console.css", endpoint="css", methods=["GET"]),
            ],
            strict_slashes=False,
        )

    def replayer(self) -> Receiver:
        """The receiver that replays: the application's plugins and store, trusting the store.

        Built once, on the first replay, and never closed here: the store is the app's.
        """
        with self._replayer_lock:
            if self._replayer is None:
                self._replayer = replaying_receiver(self.receiver)
            return self._replayer

    def asgi(self) -> WsgiOnThreads:
        """This console as an ASGI application (each request on a worker thread)."""
        return WsgiOnThreads(self)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self._dispatch(request)
        except HTTPException as exc:
            response = self._views.error(exc)
        except StoreError as exc:
            logger.error("console: the store did not answer: %s", exc)
            response = self._views.error(ServiceUnavailable("the store did not answer; try again"))
        response.headers.update(SECURITY_HEADERS)
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        if self.insecure and not _loopback(request.remote_addr):
            raise Forbidden("this console runs without a password: it answers loopback only")
        if not request.environ.get("PATH_INFO"):
            # Pages link relative to the root: "<prefix>" must become "<prefix>/" first.
            return redirect(request.script_root + "/", 308)
        adapter = self._urls.bind_to_environ(request.environ)
        endpoint, _ = adapter.match()
        if endpoint == "css":
            return self._views.stylesheet()
        session = self._signer.load(request.cookies.get(COOKIE))
        if self.insecure and (session is None or not session.authenticated):
            session = self._signer.new(authenticated=True)
            return self._with_cookie(request, redirect(request.url, 303), session)
        if endpoint == "login":
            return self._login(request, session)
        if session is None or not session.authenticated:
            if request.method != "GET":
                raise Forbidden("log in first")
            return redirect(adapter.build("login"), 303)
        if request.method == "POST" and not self._signer.csrf_ok(session, request.form.get("csrf")):
            raise Forbidden("the form's CSRF token is missing or wrong: reload the page")
        csrf = self._signer.csrf_token(session)
        if endpoint == "logout":
            response = redirect(adapter.build("login"), 303)
            response.delete_cookie(COOKIE, path=_cookie_path(request))
            return response
        if endpoint == "replay":
            return self._views.replay(request, adapter, self.replayer(), csrf)
        if endpoint == "delivery":
            return self._views.delivery(request, self.receiver.plugin_manager, csrf)
        return self._views.deliveries(request, csrf)

    def _login(self, request: Request, session: Session | None) -> Response:
        if request.method == "GET":
            fresh = session or self._signer.new(authenticated=False)
            page = self._views.login(self._signer.csrf_token(fresh), error=None)
            return self._with_cookie(request, page, fresh)
        if not self._signer.csrf_ok(session, request.form.get("csrf")):
            raise Forbidden("the form's CSRF token is missing or wrong: reload the page")
        assert session is not None  # csrf_ok is False without one
        given = request.form.get("password", "")
        if self._password is None or not same_secret(given, self._password):
            page = self._views.login(self._signer.csrf_token(session), error="wrong password")
            page.status_code = 401
            return page
        # A new session id on login, so a session planted before it is worth nothing after.
        adapter = self._urls.bind_to_environ(request.environ)
        fresh = self._signer.new(authenticated=True)
        return self._with_cookie(request, redirect(adapter.build("deliveries"), 303), fresh)

    def _with_cookie(self, request: Request, response: Response, session: Session) -> Response:
        response.set_cookie(
            COOKIE,
            self._signer.dump(session),
            max_age=int(self._signer.ttl),
            path=_cookie_path(request),
            secure=request.is_secure,
            httponly=True,
            samesite="Strict",
        )
        return response


def _cookie_path(request: Request) -> str:
    return (request.script_root or "") + "/"


def _loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _check_password(receiver: Receiver, password: str) -> None:
    """Refuse a password too short to resist guessing, or one that is Codat's credential:
    whoever reads the console's configuration must not learn how to forge deliveries."""
    if len(password) < MIN_PASSWORD:
        raise ConfigurationError(f"the console password needs {MIN_PASSWORD} characters or more")
    if password.startswith("whsec_"):
        raise ConfigurationError("the console password must not be a Codat signing secret")
    if not receiver.authenticator.secured:
        return
    for value in (password, f"Bearer {password}"):
        try:
            receiver.authenticator.verify(Headers({"Authorization": value}), b"")
        except VerificationError:
            continue
        raise ConfigurationError(
            "the console password must not be Codat's Authorization value: choose another"
        )
