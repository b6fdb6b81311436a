"""The process's shared services, handed to the REST app and the live gateway."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from actors.registry import RoomRegistry
from actors.room_actor import ActorConfig
from server.auth import PasswordHashing, TokenIssuer, load_or_create_secret, usable_cores
from server.auth_limits import AuthLimits
from server.config import Settings
from server.live.user_sockets import UserSockets
from server.metrics import Metrics
from storage.badges import Badges
from storage.blocks import Blocks
from storage.database import Database

if TYPE_CHECKING:
    from server.cluster.service import Cluster
from storage.feed import Feed
from storage.leaderboards import Leaderboards
from storage.leases import Leases
from storage.linked_accounts import LinkedAccountStore
from storage.marketplace import Marketplace
from storage.moderation import ModerationLog
from storage.notifications import Notifications
from storage.playlists import Playlists
from storage.profiles import Profiles
from storage.progression import Progression
from storage.recommendations import Recommendations
from storage.reports import Reports
from storage.rooms import Rooms
from storage.sanctions import Sanctions
from storage.sealing import Sealer, key_bytes, new_key_text
from storage.search import Search
from storage.seasons import Seasons
from storage.social import Social
from storage.users import Users
from storage.verification import Verification


@dataclass
class AppContext:
    settings: Settings
    db: Database
    tokens: TokenIssuer
    metrics: Metrics
    users: Users
    rooms: Rooms
    progression: Progression
    profiles: Profiles
    playlists: Playlists
    verification: Verification
    social: Social
    blocks: Blocks
    notifications: Notifications
    feed: Feed
    marketplace: Marketplace
    leaderboards: Leaderboards
    badges: Badges
    seasons: Seasons
    moderation: ModerationLog
    linked_accounts: LinkedAccountStore
    search: Search
    recommendations: Recommendations
    sanctions: Sanctions
    reports: Reports
    passwords: PasswordHashing
    auth_limits: AuthLimits
    registry: RoomRegistry | None = None  # set while the live side runs
    user_sockets: UserSockets | None = None  # set while the live side runs
    cluster: Cluster | None = None  # set while the live side runs
    leases: Leases | None = None  # set while the live side runs
    live_port: int | None = None  # the live gateway's bound port, once it listens

    @classmethod
    def build(cls, settings: Settings, db: Database, jwt_secret: str) -> AppContext:
        key = load_or_create_secret(
            settings.encryption_key, settings.data_dir, name="encryption_key", make=new_key_text
        )
        sanctions = Sanctions(db)
        return cls(
            settings=settings,
            db=db,
            tokens=TokenIssuer(jwt_secret, settings.token_ttl_s),
            metrics=Metrics(),
            users=Users(db),
            rooms=Rooms(db),
            progression=Progression(db),
            profiles=Profiles(db),
            playlists=Playlists(db),
            verification=Verification(db),
            social=Social(db),
            blocks=Blocks(db),
            notifications=Notifications(db),
            feed=Feed(db),
            marketplace=Marketplace(db),
            leaderboards=Leaderboards(db),
            badges=Badges(db),
            seasons=Seasons(db),
            moderation=ModerationLog(db),
            linked_accounts=LinkedAccountStore(db, Sealer(key_bytes(key))),
            search=Search(db),
            recommendations=Recommendations(db),
            sanctions=sanctions,
            reports=Reports(db, sanctions),
            passwords=PasswordHashing(slots=usable_cores()),
            auth_limits=AuthLimits(
                fails_per_min=settings.login_fails_per_min,
                per_min_per_addr=settings.auth_per_min_per_addr,
            ),
        )

    def actor_config(self) -> ActorConfig:
        s = self.settings
        return ActorConfig(
            idle_s=s.room_idle_s,
            snapshot_every=s.snapshot_every,
            chat_rate=s.chat_rate,
            chat_rate_window_s=s.chat_rate_window_s,
            ops_per_second=s.ops_per_second,
            coalesce_s=s.coalesce_ms / 1000,
        )
