"""The caller's IP address, defined once: audit events, login throttling (django-axes) and the webhook
receiver all ask this function.

Behind no proxy (TRUSTED_PROXY_COUNT = 0, the default) it is REMOTE_ADDR: X-Forwarded-For is a header
any client can write. Behind N trusted proxies, each appends the address it received the request from,
so the client is the N-th address counted from the right; a header shorter than that was not written
by our proxies and is not trusted (REMOTE_ADDR is used).
"""

import ipaddress

from django.conf import settings


def normalise_ip(value: str | None) -> str | None:
    """A valid address in its canonical text (an IPv4-mapped IPv6 address as IPv4), else None."""
    if not value:
        return None
    try:
        ip = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return str(ip)


def client_ip(request) -> str | None:
    if request is None:
        return None
    meta = getattr(request, "META", {})
    proxies = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if proxies > 0:
        hops = [h.strip() for h in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
        if len(hops) >= proxies:
            return normalise_ip(hops[-proxies])
    return normalise_ip(meta.get("REMOTE_ADDR"))
