"""Orchestration in plain Python: gap analysis, running one provider stage, merge, validation, the dry run."""
