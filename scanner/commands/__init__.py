"""Subcommands of the vecleak CLI, one module each."""
