"""A paginator that never counts a whole table: it counts at most a fixed number of rows and says when it stopped."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.utils.functional import cached_property

COUNT_LIMIT = 10_000


class BoundedCountPaginator(Paginator):
    """Counts with `SELECT COUNT(*) FROM (SELECT ... LIMIT n)`, so a page costs the same on a million rows.

    `count` is exact up to `count_limit` and equals `count_limit` above it, with `is_capped` set; pages beyond
    the limit are not offered (filters and search narrow a list faster than paging through 10,000 rows).
    """

    count_limit = COUNT_LIMIT

    @cached_property
    def _bounded_count(self) -> int:
        rows = self.object_list
        if hasattr(rows, "order_by"):
            # One row past the limit tells "exactly the limit" from "more than the limit".
            return rows.order_by()[: self.count_limit + 1].count()
        return len(rows)

    @cached_property
    def count(self) -> int:
        return min(self._bounded_count, self.count_limit)

    @property
    def is_capped(self) -> bool:
        return self._bounded_count > self.count_limit
