"""Work that several sections of one page need, done once for that page.

A page assembled from independent sections (the auditor's reports page: the workflow's, the risk
register's and the portfolio's, each named in settings) may need the same costly answer in more than one
of them. Inside `once_per_page()`, which the view opens around its sections, a function decorated with
`shared(key)` computes its answer once per key and gives each caller its own copy; outside such a block
every call computes afresh. Nothing outlives the block, so nothing is ever served to another request.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_memo: ContextVar[dict | None] = ContextVar("page_memo", default=None)


@contextmanager
def once_per_page() -> Iterator[None]:
    token = _memo.set({})
    try:
        yield
    finally:
        _memo.reset(token)


def shared(key: Callable[..., object]):
    """Within once_per_page(), `fn(*args, **kwargs)` is computed once per `key(*args, **kwargs)`."""
    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            memo = _memo.get()
            if memo is None:
                return fn(*args, **kwargs)
            name = (fn.__module__, fn.__qualname__, key(*args, **kwargs))
            if name not in memo:
                memo[name] = fn(*args, **kwargs)
            return copy.deepcopy(memo[name])  # a caller that edits its answer never edits another's
        return wrapper
    return decorate
