"""A one-line progress bar on stderr (a line every few seconds when stderr is not a terminal)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

# Counters worth showing while a run goes, in this order; rates are shown for the first two.
_SHOWN = (
    "registered",
    "deliveries",
    "requests",
    "connected",
    "sent",
    "acked",
    "votes_sent",
    "reconnects",
    "errors",
)
_RATED = ("deliveries", "requests")
_WIDTH = 24


class ProgressBar:
    def __init__(self, stream: TextIO | None = None, *, enabled: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = self.stream.isatty()
        self._last_draw = 0.0
        self._last_counts: dict[str, int] = {}
        self._last_at = time.monotonic()
        self._rates: dict[str, float] = {}
        self._drawn = False

    def show(self, phase: str, fraction: float | None, counts: dict[str, int]) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last_at >= 0.5:
            elapsed = now - self._last_at
            for name in _RATED:
                if name in counts:
                    self._rates[name] = (counts[name] - self._last_counts.get(name, 0)) / elapsed
            self._last_counts = dict(counts)
            self._last_at = now
        if now - self._last_draw < (0.1 if self.tty else 5.0):
            return
        self._last_draw = now
        parts = []
        for name in _SHOWN:
            if name in counts:
                part = f"{name} {counts[name]:,}"
                if name in self._rates:
                    part += f" ({self._rates[name]:,.0f}/s)"
                parts.append(part)
        if fraction is None:
            bar = ""
        else:
            filled = round(min(max(fraction, 0.0), 1.0) * _WIDTH)
            bar = "[" + "#" * filled + "." * (_WIDTH - filled) + "] "
        line = f"{phase:<8} {bar}{'  '.join(parts)}"
        if self.tty:
            self.stream.write("\r" + line[:200].ljust(120))
            self._drawn = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        """A line that stays (set-up steps)."""
        if not self.enabled:
            return
        self.done()
        self.stream.write(text + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
