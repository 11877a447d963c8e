"""The Faust app and worker as ``recstream worker`` builds them (no broker needed)."""

from __future__ import annotations

import gc
import logging

import pytest

from models import GC_THRESHOLDS
from streams.settings import Settings
from streams.worker.app import faust_app, faust_worker


@pytest.fixture(autouse=True)
def python_gc_thresholds():
    """Each test starts from Python's own thresholds and leaves them as it found them."""
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*saved)


@pytest.mark.parametrize("level", ["warn", "error", "info"])
def test_a_quiet_worker_logs_no_debug_records_at_its_level(level: str) -> None:
    """Faust's terminal spinner set the root logger to DEBUG at ``warn`` and above, so every
    debug call of aiokafka built a record (several per message sent)."""
    root = logging.getLogger()
    saved = root.level, list(root.handlers)
    try:
        worker = faust_worker(faust_app(Settings(app_id="test-app-logging")), level)
        worker._setup_logging()
        assert not logging.getLogger("aiokafka").isEnabledFor(logging.DEBUG)
        assert root.level == logging.getLevelName(level.upper().replace("WARN", "WARNING"))
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]


def test_the_worker_process_collects_cyclic_garbage_rarely() -> None:
    faust_worker(faust_app(Settings(app_id="test-app-gc")), "info")
    assert gc.get_threshold() == GC_THRESHOLDS and GC_THRESHOLDS[0] > 700
