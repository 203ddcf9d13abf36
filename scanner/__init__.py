"""vecleak: find embedding vectors leaked into logs, traces and search indexes."""

__version__ = "0.1.0"
