"""Provider adapters, one module each; `registry.build_providers` turns the configured order into instances."""
