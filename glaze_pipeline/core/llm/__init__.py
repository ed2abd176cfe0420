"""The LLM fallback: evidence, the extraction tool, grounding, prices (the provider is core/providers/llm.py)."""
