"""One pagination shape for every list: `{count, next, previous, results}`."""

from __future__ import annotations

from rest_framework.pagination import LimitOffsetPagination


class Pagination(LimitOffsetPagination):
    """`?limit=&offset=`; 50 by default, 500 at most, so no list is unbounded."""

    default_limit = 50
    max_limit = 500
