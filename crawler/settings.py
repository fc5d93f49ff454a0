"""Scrapy settings for the health-topic crawler.

Defaults are for the live site: polite (robots.txt with Crawl-delay, about one request
a second, AutoThrottle, bounded retries with backoff honouring Retry-After) and
honest (a User-Agent naming the project and a contact URL). Tests override delays and
the target, never the logic. Settings of our own are prefixed MEDLINEPLUS_ or ARCHIVE_.
"""

from __future__ import annotations

BOT_NAME = "medlineplus-archive"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"

PROJECT_URL = "https://github.com/medlineplus-archive/medlineplus-archive"
USER_AGENT = f"medlineplus-archive/0.1 (+{PROJECT_URL}; health-topic archiver)"

# --- what to crawl -------------------------------------------------------------------
MEDLINEPLUS_BASE_URL = "https://medlineplus.gov"
"""Where pages are fetched from: the live site or any mirror of it. Items always carry
the canonical https://medlineplus.gov URL."""
MEDLINEPLUS_LANGUAGES = ["en", "es"]
MEDLINEPLUS_XML_MAX_BYTES = 200 * 1024 * 1024
"""`--from-xml`: most bytes of the dump downloaded, and most bytes of XML read from it
(decompressed, for a zip). NLM's daily dump of about 2,000 topics is a few tens of MB."""
MEDLINEPLUS_PARSE_WORKERS = 1
"""Processes that extract fetched pages beside the crawl's event loop (0: extract in the
crawl's process). One keeps a local mirror crawl from being bound by parsing; more only
help with more than two cores."""
MEDLINEPLUS_STOP_DEADLINE = 25.0
"""Seconds after a stop signal (SIGTERM, SIGINT, SIGHUP) before a crawl that has not
stopped gracefully stops at once, committing nothing more (see `crawler.shutdown`)."""
MEDLINEPLUS_GC_THRESHOLD = 10_000
"""Allocations between passes of Python's garbage collector while crawling (Python's
default is 700: a pass every two or three pages; see `crawler.collector`). 0 leaves
Python's."""

# --- where the archive lives ---------------------------------------------------------
ARCHIVE_PATH = "output"
"""The archive directory (the command line sets it from --archive / $MEDLINEPLUS_ARCHIVE)."""
ARCHIVE_MAX_GONE_SHARE = 0.02
"""The shrink guard: a run that would mark more than this share of a language's live topics
gone (and more than 5) marks none and exits 1. Raise it (1 = no limit) for a deliberate
large removal."""
ARCHIVE_NOTIFY: list[str] = []
"""Apprise URLs told about each run (`crawl --notify`; with `-s`, a JSON array of URLs):
see crawler/notify.py."""
ARCHIVE_NOTIFY_ALWAYS = False
"""Notify after every run, not only when something changed or the run did not succeed."""

ARCHIVE_COMPACT_EVERY = 16
"""After the crawl that completes them, merge the files of this many consecutive runs into
one per table (and this many merged files into one again); 0 never merges during a crawl
(run `medlineplus-archive compact` instead). Must be 0 or at least 2."""

# --- politeness ----------------------------------------------------------------------
ROBOTSTXT_OBEY = True
DOWNLOAD_DELAY = 1.0
"""Seconds between requests to one host; raised to robots.txt's Crawl-delay when larger."""
DOWNLOAD_DELAY_JITTER = 0
"""No random variation of the delay (Scrapy >= 2.19; older Scrapy randomises it +-50%)."""
CONCURRENT_REQUESTS = 8
CONCURRENT_REQUESTS_PER_DOMAIN = 2
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 60.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0
DOWNLOAD_TIMEOUT = 60
DOWNLOAD_MAXSIZE = 10 * 1024 * 1024
"""A health-topic page is about 100-250 KB; anything above 10 MB is not one."""
DOWNLOAD_WARNSIZE = 2 * 1024 * 1024
CONCURRENT_ITEMS = 1
"""Each topic page yields one item, and the pipelines do not wait on I/O: Scrapy starts
this many asyncio tasks for every response, whatever it yields (its default of 100 was
measured at a quarter of a crawl's CPU time, and 8 still at a tenth of a re-crawl's)."""
WARN_ON_GENERATOR_RETURN_VALUE = False
"""Scrapy re-reads and re-parses a generator callback's source for this check on every
response (its cache holds bound methods weakly, so they are gone by the next one):
measured at 5% of a crawl's CPU. Our callbacks return no values."""
METAREFRESH_ENABLED = False
"""Topic pages carry no meta refresh, and following one would let a page vanish as
Scrapy's redirects do (the spider handles HTTP redirects itself); the middleware also
decoded every page to look for one."""
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False
"""Scrapy 2.19's remote control is an HTTP server that executes code sent to it: no
scheduled archiver should listen for that (it also leaves a job file behind)."""


RETRY_ENABLED = True
RETRY_TIMES = 3
RETRY_HTTP_CODES = [429, 500, 502, 503, 504, 522, 524, 408]
RETRY_BACKOFF_BASE = 2.0
"""First retry waits this many seconds, each further one twice as long (capped)."""
RETRY_BACKOFF_MAX = 120.0
"""Longest wait before one retry, also the cap on an honoured Retry-After."""

# --- components ----------------------------------------------------------------------
DOWNLOADER_MIDDLEWARES = {
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "crawler.robots.RobotsTxtMiddleware": 100,
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "crawler.retry_after.RetryAfterMiddleware": 550,
    "crawler.conditional.ConditionalRequestMiddleware": 560,
}
SPIDER_MIDDLEWARES = {
    "scrapy.spidermiddlewares.urllength.UrlLengthMiddleware": None,
    "scrapy.spidermiddlewares.depth.DepthMiddleware": None,
    "scrapy.spidermiddlewares.metacopy.MetaCopyDetectionMiddleware": None,
}
"""Off: what they guard does not arise here (a topic URL is short by its pattern, a crawl
is two levels deep, request meta is copied on purpose), and every item and request of an
async callback passes through each of them."""
EXTENSIONS = {
    "scrapy.extensions.throttle.AutoThrottle": None,
    "pipelines.session.ArchiveSession": 0,
    "crawler.crawl_delay.CrawlDelayThrottle": 0,
    "crawler.progress.Progress": 500,
    "crawler.reactor_timers.ReactorTimerSweep": 510,
    "crawler.collector.CollectorTuning": 520,
    "crawler.notify.RunNotifier": 530,
}
ITEM_PIPELINES = {
    "pipelines.validate.ValidatePipeline": 100,
    "pipelines.dedupe.DedupePipeline": 200,
    "pipelines.archiving.ArchivePipeline": 300,
}

PROGRESS_INTERVAL = 30.0
"""Seconds between progress log lines when not on a terminal."""

LOG_LEVEL = "INFO"
LOG_FORMATTER = "crawler.log_formatter.PageLogFormatter"
FEED_EXPORT_ENCODING = "utf-8"
