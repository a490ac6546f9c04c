"""Evaluators (LLM judge and rule checks), shared by the service and offline golden-set runs."""
