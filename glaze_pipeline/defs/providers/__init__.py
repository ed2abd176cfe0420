"""Providers: one asset per provider, chained in the configured waterfall order."""
