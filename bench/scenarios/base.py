"""What a scenario is: its options, its set-up (users, rooms, roles per worker), its own results."""

from __future__ import annotations

import argparse
import secrets
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from bench.coordinator import RunOutcome, RunPlan
from bench.progress import ProgressBar
from bench.rest import RestApi, UserPool
from bench.wsclient import LiveEndpoint

T = TypeVar("T")


@dataclass
class SetupEnv:
    """What set-up may use."""

    api: RestApi
    users: UserPool
    live: LiveEndpoint
    procs: int
    duration_s: float
    drain_s: float
    connect_timeout: float
    progress: ProgressBar
    tag: str = field(default_factory=lambda: secrets.token_hex(3))


@dataclass
class ScenarioResult:
    """A scenario's own rows for the table (label, value) and fields for the JSON, and latency
    series (nanoseconds) it computed from the merged results, shown with the others."""

    rows: list[tuple[str, str]] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    latency: dict[str, list[int]] = field(default_factory=dict)


def share(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` near-equal shares, larger ones first."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def deal(items: list[T], parts: int) -> list[list[T]]:
    """``items`` dealt round-robin into ``parts`` hands."""
    return [items[i::parts] for i in range(parts)]


class Scenario(ABC):
    name: ClassVar[str]
    help: ClassVar[str]

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args

    @classmethod
    @abstractmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """This scenario's own options."""

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """The options that shape the load, for the report."""

    @abstractmethod
    def describe(self) -> str:
        """One line: what load this is."""

    @abstractmethod
    async def setup(self, env: SetupEnv) -> RunPlan:
        """Create users and rooms through REST; say what each worker runs."""

    @abstractmethod
    def results(self, outcome: RunOutcome) -> ScenarioResult:
        """What this scenario adds to the common report."""
