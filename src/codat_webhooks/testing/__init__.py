"""Helpers for testing code that receives Codat webhooks: samples, signatures, recorders.

Public and stable, in the spirit of ``werkzeug.test``: use them in your own test suites.
"""

from __future__ import annotations

from .samples import legacy_sample, sample_body
from .signing import sign

__all__ = ["legacy_sample", "sample_body", "sign"]
