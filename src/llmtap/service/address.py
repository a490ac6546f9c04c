"""Listen addresses of the service: ``host:port`` or ``[v6]:port``."""

from __future__ import annotations

__all__ = ["parse_address"]


def parse_address(address: str, what: str = "address") -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` → (host, port); port 0 picks a free one."""
    text = address.strip()
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
    else:
        host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{what}: expected host:port, got {address!r}")
    return host or "0.0.0.0", int(port)
