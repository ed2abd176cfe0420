"""The LLM fallback: the provider, its evidence, the extraction tool and grounding, prices."""
