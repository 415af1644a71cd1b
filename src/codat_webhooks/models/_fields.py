"""Field types and the base model shared by legacy alerts and new-service events.

Codat's payloads disagree with themselves: IDs arrive as ``""`` or all zeros, timestamps carry
seven fractional digits or no zone, and keys switch between PascalCase and camelCase. These
helpers absorb that once, so each model declares only names and types.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime, timezone
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetPydanticSchema,
)
from pydantic_core import core_schema

__all__ = ["CodatDate", "CodatId", "CodatModel", "LocalDatetime", "UtcDatetime", "codat_field"]


_BLANK_ID = r"^[\s\x1c-\x1f]*[0-]*[\s\x1c-\x1f]*$"
"""What Codat sends where there is no ID: ``""``, or (in old examples) the nil UUID; padded
with whitespace or not (``\x1c``-``\x1f`` too, which ``str.strip`` also removes)."""


_GIVEN_ID = r"[^\s\x1c-\x1f0-]"
"""An ID that holds something besides whitespace, zeros and hyphens: not blank (most IDs)."""


def _none(_value: object) -> None:
    return None


def _nil_to_none(value: uuid.UUID) -> uuid.UUID | None:
    return None if value.int == 0 else value


def _codat_id_schema(source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
    """A UUID or ``None``, after blank IDs became ``None``.

    The blank check is a pattern pydantic-core matches itself, so an ID costs no Python call;
    anything else goes on to pydantic's own UUID validation unchanged, with its own errors.
    """
    blank = core_schema.chain_schema(
        [
            core_schema.str_schema(strict=True, pattern=_BLANK_ID),
            core_schema.no_info_plain_validator_function(_none),
        ]
    )
    nil = core_schema.chain_schema(
        [
            core_schema.is_instance_schema(uuid.UUID),
            core_schema.no_info_plain_validator_function(_nil_to_none),
        ]
    )
    given = core_schema.str_schema(strict=True, pattern=_GIVEN_ID)
    blank_to_none = core_schema.union_schema(
        [given, blank, nil, core_schema.any_schema()], mode="left_to_right"
    )
    validated = handler(source)
    return core_schema.chain_schema(
        [blank_to_none, validated],
        # Documented as what it produces, as pydantic documents a plain UUID field.
        metadata={"pydantic_js_functions": [lambda _schema, to_json: to_json(validated)]},
    )


def _assume_utc(value: datetime | None) -> datetime | None:
    """Codat documents these timestamps as UTC; a few omit the zone, which would make them naive."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


CodatId = Annotated[uuid.UUID | None, GetPydanticSchema(_codat_id_schema)]
"""A Codat GUID, or ``None`` when Codat sent nothing, an empty string or all zeros."""

UtcDatetime = Annotated[datetime | None, AfterValidator(_assume_utc)]
"""A timestamp Codat documents as UTC ("the date time in UTC ..."): zone-less strings get UTC.

Only for fields whose description (or name, ``...Utc``) says UTC: the envelope's
``generatedDate``, write ``requestedOnDate``/``completedOnDate``, ``modifiedFromDate``,
``expiryDate``, ``erroredOnUtc``/``resolvedOnUtc``, legacy ``ExpiresUtc``.
"""

LocalDatetime = Annotated[datetime | None, "kept as sent"]
"""A Codat ``DateTime`` with no documented zone, kept exactly as sent.

Codat's data model says such values may be UTC (``Z``), carry an offset, or be *unqualified
local time of the business* when the platform gives no zone. A naive value therefore stays
naive: stamping it UTC would shift it by the business's offset.
"""

CodatDate = Annotated[date | datetime | None, Field(union_mode="left_to_right")]
"""A Codat ``Date`` (``2022-10-23``), or a datetime when one is sent (naive kept naive)."""


def _swap_first_case(name: str) -> str:
    first = name[:1]
    return (first.lower() if first.isupper() else first.upper()) + name[1:]


def codat_field(
    alias: str,
    *also: str,
    default: Any = None,
    default_factory: Callable[[], Any] | None = None,
) -> Any:
    """A field read from Codat's key in either initial case, and written back as ``alias``.

    ``default_factory`` (for nested models: ``Data``, ``payload``) replaces ``default``.
    """
    choices = AliasChoices(*dict.fromkeys((alias, _swap_first_case(alias), *also)))
    if default_factory is not None:
        return Field(
            default_factory=default_factory, validation_alias=choices, serialization_alias=alias
        )
    return Field(default=default, validation_alias=choices, serialization_alias=alias)


class CodatModel(BaseModel):
    """Frozen, keeps unknown keys (Codat adds fields without notice), accepts names or aliases."""

    model_config = ConfigDict(
        frozen=True,
        extra="allow",
        validate_by_name=True,
        validate_by_alias=True,
    )
