"""Which request paths a receiver mounted at a path answers, for both middlewares."""

from __future__ import annotations

from .errors import ConfigurationError

__all__ = ["answered_paths"]


def answered_paths(path: str, *, health: bool) -> list[str]:
    """``path`` with and without a trailing slash, and its health probe unless turned off.

    Both spellings are answered in place because Codat counts a redirect as a failed
    delivery; the probe lives under the same prefix so whatever routes deliveries to the
    receiver routes the load balancer's checks too.
    """
    if not path.startswith("/"):
        raise ConfigurationError(f"path must start with '/', got {path!r}")
    bare = path.rstrip("/")
    paths = [bare or "/", bare + "/"]
    if health:
        paths += [bare + "/health", bare + "/health/"]
    return paths
