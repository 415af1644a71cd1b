"""Griffe extension: Sphinx roles in docstrings (``:class:`X```) become Markdown code spans.

The code's docstrings use reST roles, which mkdocstrings would otherwise print literally.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")


class SphinxRoles(griffe.Extension):
    def on_object(self, *, obj: griffe.Object, **_: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(r"`\1`", obj.docstring.value)
