"""One definition of the caller's IP: REMOTE_ADDR, unless a number of trusted proxies is configured, then
X-Forwarded-For counted from the right. The login lockout (django-axes) and the audit trail agree."""

import pytest
from axes.helpers import get_client_ip_address
from django.test import RequestFactory

from registry_ui.client_ip import client_ip

rf = RequestFactory()


def request_from(remote: str, forwarded: str | None = None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return rf.get("/", **extra)


def test_without_trusted_proxies_a_forwarded_header_is_ignored(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(request_from("203.0.113.9", "198.51.100.1")) == "203.0.113.9"


@pytest.mark.parametrize("count,header,expected", [
    (1, "198.51.100.7", "198.51.100.7"),
    # A client may send its own X-Forwarded-For: the proxy appends the real address on the right.
    (1, "10.9.9.9, 198.51.100.7", "198.51.100.7"),
    (2, "6.6.6.6, 198.51.100.7, 192.0.2.10", "198.51.100.7"),
    # Fewer hops than trusted proxies: the header was not written by them; fall back to the peer.
    (2, "198.51.100.7", "192.0.2.1"),
    (1, "not-an-ip", None),
])
def test_trusted_proxies_are_counted_from_the_right(settings, count, header, expected):
    settings.TRUSTED_PROXY_COUNT = count
    assert client_ip(request_from("192.0.2.1", header)) == expected


def test_ipv4_mapped_addresses_read_as_ipv4(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(request_from("::ffff:192.0.2.5")) == "192.0.2.5"


@pytest.mark.parametrize("count", [0, 1])
def test_the_login_lockout_sees_the_same_address(settings, count):
    settings.TRUSTED_PROXY_COUNT = count
    request = request_from("192.0.2.1", "6.6.6.6, 198.51.100.7")
    assert get_client_ip_address(request) == client_ip(request)
