"""The garbage collector's settings for a serving process.

A room server allocates a few short-lived objects per message (events, outcomes, trio's
wake-ups) and keeps a large, long-lived heap (the modules, pydantic's schemas, rooms' state).
With CPython's default thresholds (700 allocations) the youngest generation is collected every
few messages and the oldest, which walks that whole heap, often: `bench rooms` at saturation
spent about a sixth of its CPU there (bench/README.md "Per-process changes"). Almost every one
of these objects is freed by reference counting anyway; the collector only has cycles to find.
"""

from __future__ import annotations

import gc

# CPython's defaults are (700, 10, 10).
GEN1_THRESHOLD = 20
GEN2_THRESHOLD = 100


def tune_for_serving(gen0_threshold: int) -> None:
    """Move what start-up allocated out of the collector's sight and collect less often.

    ``gen0_threshold`` is ``SEDA_GC_GEN0``; 700 with the older generations at 10 is CPython's
    own behaviour, which ``tune_for_serving(0)`` keeps (no freeze, no new thresholds)."""
    if gen0_threshold <= 0:
        return
    gc.collect()
    gc.freeze()  # the start-up heap is never walked again
    gc.set_threshold(gen0_threshold, GEN1_THRESHOLD, GEN2_THRESHOLD)
