"""Whether an HTTP request came from this machine (open /metrics on loopback, keyed elsewhere)."""

from __future__ import annotations

import ipaddress

from starlette.requests import Request


def is_loopback(request: Request) -> bool:
    """True when the request's peer address is a loopback address."""
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
