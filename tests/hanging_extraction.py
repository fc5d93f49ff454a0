"""`medlineplus-archive ARGS...` whose page extraction never finishes (tests only).

Run as a script: `python tests/hanging_extraction.py crawl ...`. The patch is made at
the top level, so that the spawned extraction worker, which runs this file again as
`__mp_main__`, hangs too; the crawl itself starts under `__main__` only.
"""

from __future__ import annotations

import sys
import time

from crawler.spiders import extraction_pool

HANG_SECONDS = 3600.0


def _hang(*_: object) -> None:
    time.sleep(HANG_SECONDS)


extraction_pool.extract_page = _hang  # type: ignore[assignment]

if __name__ == "__main__":
    from crawler.commands.cli import main

    sys.exit(main(sys.argv[1:]))
