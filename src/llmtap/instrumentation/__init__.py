"""Instrumentors for model SDKs; the neutral core lives in the underscore modules."""
