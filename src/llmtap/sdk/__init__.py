"""The in-process side: providers, exporters and instrumentors wired in one call."""
