"""The serving process's collector settings (server/collector.py), and SEDA_GC_GEN0."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from server.collector import GEN1_THRESHOLD, GEN2_THRESHOLD, tune_for_serving
from server.config import ConfigError, load_settings


@pytest.fixture
def restore_gc() -> Iterator[None]:
    before = gc.get_threshold()
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


def test_tuning_sets_thresholds_and_freezes_the_start_up_heap(restore_gc: None) -> None:
    gc.unfreeze()
    tune_for_serving(12_345)
    assert gc.get_threshold() == (12_345, GEN1_THRESHOLD, GEN2_THRESHOLD)
    assert gc.get_freeze_count() > 0


def test_zero_keeps_cpython_behaviour(restore_gc: None) -> None:
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    tune_for_serving(0)
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0


def test_setting_is_read_and_checked() -> None:
    assert load_settings({}).gc_gen0 == 50_000
    assert load_settings({"SEDA_GC_GEN0": "0"}).gc_gen0 == 0
    with pytest.raises(ConfigError, match="SEDA_GC_GEN0"):
        load_settings({"SEDA_GC_GEN0": "-1"})
