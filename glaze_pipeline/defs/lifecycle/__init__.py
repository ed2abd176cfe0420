"""Lifecycle: runs that fail say why, runs whose process died are found, lost run requests are made again."""
