"""The process's shared services, handed to the REST app and the live gateway."""

from __future__ import annotations

from dataclasses import dataclass

from server.auth import TokenIssuer
from server.config import Settings
from server.metrics import Metrics
from storage.database import Database
from storage.users import Users


@dataclass
class AppContext:
    settings: Settings
    db: Database
    tokens: TokenIssuer
    metrics: Metrics
    users: Users

    @classmethod
    def build(cls, settings: Settings, db: Database, jwt_secret: str) -> AppContext:
        return cls(
            settings=settings,
            db=db,
            tokens=TokenIssuer(jwt_secret, settings.token_ttl_s),
            metrics=Metrics(),
            users=Users(db),
        )
