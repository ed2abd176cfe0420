"""Refresh: ask again for values older than their refresh age (a schedule, `glaze refresh`, the launchpad's force)."""
