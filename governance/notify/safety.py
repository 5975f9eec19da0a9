"""SSRF guard for outbound webhooks: a destination must resolve only to public addresses.

Checked when a subscription is saved AND before every send (DNS can change between the two). The
setting OUTBOUND_WEBHOOKS_ALLOW_PRIVATE (off by default) lifts the address rule, for a receiver on the
same host or network (the tests' local receiver). Redirects are never followed, so a public address
cannot bounce a delivery inward.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings


def _blocked(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast
            or ip.is_unspecified or not ip.is_global)


def destination_problem(url: str, *, resolve=socket.getaddrinfo) -> str:
    """Why `url` may not receive webhooks ("" when it may)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "The URL is not valid."
    if parts.scheme not in ("http", "https"):
        return "Only http and https destinations are allowed."
    if not parts.hostname:
        return "The URL names no host."
    if parts.username or parts.password:
        return "Credentials in the URL are not allowed (use the signing secret)."
    if getattr(settings, "OUTBOUND_WEBHOOKS_ALLOW_PRIVATE", False):
        return ""
    try:
        infos = resolve(parts.hostname, port or (443 if parts.scheme == "https" else 80), proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return f"The host {parts.hostname} does not resolve."
    addresses = {info[4][0].split("%", 1)[0] for info in infos}
    if not addresses:
        return f"The host {parts.hostname} does not resolve."
    for address in sorted(addresses):
        if _blocked(ipaddress.ip_address(address)):
            return (f"{parts.hostname} resolves to {address}, a loopback, private, link-local or reserved "
                    "address: refused (OUTBOUND_WEBHOOKS_ALLOW_PRIVATE is off).")
    return ""
