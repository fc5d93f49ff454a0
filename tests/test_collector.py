"""The garbage-collector tuning holds from the engine's start to its stop, and only then."""

from __future__ import annotations

import gc

import pytest
from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.test import get_crawler

from crawler import settings as project_settings
from crawler.collector import CollectorTuning
from crawler.spiders.health_topics import HealthTopicsSpider


def test_the_project_tunes_the_collector() -> None:
    assert project_settings.EXTENSIONS["crawler.collector.CollectorTuning"] is not None
    assert gc.get_threshold()[0] < project_settings.MEDLINEPLUS_GC_THRESHOLD


def test_tuned_between_engine_start_and_stop() -> None:
    before = gc.get_threshold()
    crawler = get_crawler(
        HealthTopicsSpider, {"MEDLINEPLUS_GC_THRESHOLD": 12_345, "MEMUSAGE_ENABLED": False}
    )
    _kept = CollectorTuning.from_crawler(crawler)  # the signals hold it weakly
    crawler.signals.send_catch_log(signals.engine_started)
    try:
        assert gc.get_threshold() == (12_345, *before[1:])
        assert gc.get_freeze_count() > 0
    finally:
        crawler.signals.send_catch_log(signals.engine_stopped)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_zero_leaves_pythons_collector_alone() -> None:
    crawler = get_crawler(HealthTopicsSpider, {"MEDLINEPLUS_GC_THRESHOLD": 0})
    with pytest.raises(NotConfigured):
        CollectorTuning.from_crawler(crawler)
