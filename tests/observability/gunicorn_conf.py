"""gunicorn settings of the metrics test: multiprocess mode's child_exit hook, as documented."""

from codat_webhooks.plugins.prometheus import child_exit

__all__ = ["child_exit"]
