"""The load shapes ``python -m bench`` can run, by name."""

from __future__ import annotations

from bench.scenarios.base import Scenario
from bench.scenarios.chat import FanoutScenario, RoomsScenario
from bench.scenarios.connections import IdleScenario, JoinScenario
from bench.scenarios.notify import NotifyScenario
from bench.scenarios.rest import RestScenario
from bench.scenarios.resume import ResumeScenario
from bench.scenarios.votes import VotesScenario

SCENARIOS: dict[str, type[Scenario]] = {
    scenario.name: scenario
    for scenario in (
        FanoutScenario,
        RoomsScenario,
        VotesScenario,
        JoinScenario,
        IdleScenario,
        ResumeScenario,
        RestScenario,
        NotifyScenario,
    )
}
