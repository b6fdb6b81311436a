"""REST shapes of the artist marketplace (REST.md "Marketplace").

Money travels as a decimal string with at most two places ("12.50"), never a
float; currencies are ISO 4217 codes; links are https only.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import pycountry
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from protocol.tracks import HttpsUrl

ItemType = Literal["merch", "concert", "track"]
MAX_PRICE = Decimal("99999999.99")


def _price(value: str | None) -> str | None:
    if value is None:
        return None
    amount = Decimal(value)
    if amount > MAX_PRICE:
        raise ValueError("at most 99999999.99")
    return f"{amount:.2f}"


def _currency(value: str) -> str:
    code = value.upper()
    if pycountry.currencies.get(alpha_3=code) is None:
        raise ValueError("not an ISO 4217 currency code")
    return code


# A string, so no float ever rounds a price: digits, and at most two of them after the point.
Price = Annotated[str, Field(pattern=r"^\d{1,8}(\.\d{1,2})?$", examples=["12.50"]), AfterValidator(_price)]
Currency = Annotated[str, Field(pattern=r"^[A-Za-z]{3}$"), AfterValidator(_currency)]


class ConcertInfo(BaseModel):
    """What a concert's metadata must say."""

    starts_at: datetime
    venue: str = Field(min_length=1, max_length=200)
    city: str = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _aware(self) -> ConcertInfo:
        if self.starts_at.tzinfo is None:
            raise ValueError("starts_at needs a time zone (e.g. 2027-03-01T20:00:00Z)")
        return self


def concert_start(item_type: str, metadata: dict[str, Any]) -> datetime | None:
    """The start of a concert (its metadata checked), or None for other items."""
    if item_type != "concert":
        return None
    return ConcertInfo.model_validate(metadata).starts_at


class ItemBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: ItemType
    title: str = Field(min_length=1, max_length=200, pattern=r"\S")
    description: str | None = Field(default=None, max_length=5000)
    price: Price | None = None
    currency: Currency = "USD"
    external_url: HttpsUrl | None = None
    image_url: HttpsUrl | None = None
    metadata: dict[str, Any] = Field(default_factory=dict, max_length=50)


class ItemPatch(BaseModel):
    """Fields to change; those left out stay (null clears description, price and the links)."""

    model_config = ConfigDict(extra="forbid")
    type: ItemType | None = None
    title: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"\S")
    description: str | None = Field(default=None, max_length=5000)
    price: Price | None = None
    currency: Currency | None = None
    external_url: HttpsUrl | None = None
    image_url: HttpsUrl | None = None
    metadata: dict[str, Any] | None = Field(default=None, max_length=50)

    @model_validator(mode="after")
    def _no_null_required(self) -> ItemPatch:
        for name in ("type", "title", "currency", "metadata"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class ItemOut(BaseModel):
    id: str
    artist_id: str
    type: ItemType
    title: str
    description: str | None
    price: str | None
    currency: str
    external_url: str | None
    image_url: str | None
    metadata: dict[str, Any]
    active: bool
    created_at: str
    updated_at: str


class ItemPage(BaseModel):
    items: list[ItemOut]
    next_cursor: str | None
