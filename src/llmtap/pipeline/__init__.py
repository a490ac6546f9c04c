"""Stages over span attributes, shared by the in-process SDK side and the service."""
