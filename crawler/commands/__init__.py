"""Subcommands of the `medlineplus-archive` command line, one module each."""
