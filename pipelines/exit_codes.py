"""The exit codes of every command (one rule for scheduled jobs; see the README's table).

Its own module so that the crawl's pipeline and stop handlers, which set a run's exit
code, share it with the commands without importing the command layer.
"""

EXIT_OK = 0
EXIT_FAILED = 1
"""The work ran but is incomplete or failed: a run over its error threshold, with index
pages that failed, held back by the shrink guard or stopped by a signal; a page that is
not a topic, a problem `verify` found."""
EXIT_USAGE = 2
"""Bad usage or unreadable input, found before anything is fetched or written: a bad
option or number, a date or run id the archive does not have, an --archive folder that
holds no archive."""
EXIT_ARCHIVE = 3
"""The environment failed: the site cannot be reached; the archive is locked by another
crawl, on a read-only or full disk, not a folder, damaged or from a newer version; any
other error of the operating system."""
