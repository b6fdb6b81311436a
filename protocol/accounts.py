"""Request and response shapes for registration, login and the current user."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

USERNAME_RE = re.compile(r"^[a-z0-9_]{3,30}$")
# Deliberately loose: one @, something on each side, a dot in the domain, no spaces.
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


def _username(value: str) -> str:
    lowered = value.lower()
    if not USERNAME_RE.match(lowered):
        raise ValueError("must be 3-30 characters of a-z, 0-9 and _")
    return lowered


def _email(value: str) -> str:
    value = value.strip()
    if len(value) > 254 or not EMAIL_RE.match(value):
        raise ValueError("must be an email address")
    return value


Username = Annotated[
    str,
    Field(min_length=3, max_length=30, json_schema_extra={"pattern": "^[A-Za-z0-9_]{3,30}$"}),
    AfterValidator(_username),
]
Email = Annotated[str, Field(max_length=254, json_schema_extra={"format": "email"}), AfterValidator(_email)]
Password = Annotated[str, Field(min_length=8, max_length=256)]


class RegisterBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Email
    username: Username
    password: Password


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str | None = Field(default=None, max_length=254)
    username: str | None = Field(default=None, max_length=254)
    password: str = Field(min_length=1, max_length=256)

    @model_validator(mode="after")
    def _one_login(self) -> LoginBody:
        if not (self.email or self.username):
            raise ValueError("email or username is required")
        return self

    @property
    def login(self) -> str:
        return self.email or self.username or ""


class UserOut(BaseModel):
    id: str
    email: str
    username: str
    role: str
    created_at: str


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"]
    expires_in: int
    user: UserOut
