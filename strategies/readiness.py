"""The structured readiness report every session strategy returns from ``self_check()``."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field


@dataclass(frozen=True)
class ReadinessReport:
    strategy: str
    instruments_loaded: dict[str, bool]  # instrument id -> present in the cache
    data_subscribed: dict[str, bool]  # bar type -> this strategy receives it
    parameter_problems: tuple[str, ...]  # empty when every parameter is valid
    session_date: str | None  # today's NYSE session (exchange date), None when closed
    windows: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> ET start, end
    notes: tuple[str, ...] = ()

    @property
    def parameters_valid(self) -> bool:
        return not self.parameter_problems

    @property
    def ready(self) -> bool:
        return (
            self.parameters_valid
            and all(self.instruments_loaded.values())
            and all(self.data_subscribed.values())
            and bool(self.instruments_loaded)
        )

    def problems(self) -> list[str]:
        out = list(self.parameter_problems)
        out += [f"instrument {iid} not loaded" for iid, ok in self.instruments_loaded.items() if not ok]
        out += [f"bars {bt} not subscribed" for bt, ok in self.data_subscribed.items() if not ok]
        return out
