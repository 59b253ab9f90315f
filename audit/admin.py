"""The event log in the admin: a read-only list that stays fast on millions of rows, a CSV export and a dashboard."""

from __future__ import annotations

import ipaddress
import json

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ERROR_FLAG, ORDER_VAR, ChangeList
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.views.decorators.http import require_safe

from audit import charts
from audit.admin_filters import ClientFilter, EventDateFilter, EventTypeFilter, IpFilter, UserFilter
from audit.export import EXPORT_ROW_LIMIT, event_csv_lines
from audit.models import Event
from audit.paginator import BoundedCountPaginator
from audit.selectors import event_outcome_series, event_recent_alerts

# Query-string names the list accepts; anything else is refused (400) rather than passed to the database raw.
ALLOWED_LOOKUPS = frozenset(
    {"type", "outcome__exact", "created_at__gte", "created_at__lt", "user__id__exact", "client_id",
     "client_id__exact", "ip", "ip__exact"}
)
DETAIL_FIELDS = ["seq", "time", "type", "outcome", "account", "username", "client_id", "ip", "user_agent", "reason",
                 "detail_json", "prev_hash", "hash"]


class EventChangeList(ChangeList):
    """Sorts only by the columns in `sortable_by`: Django itself sorts by any column whose index is in `?o=`."""

    def get_ordering(self, request, queryset):
        order = self.params.get(ORDER_VAR)
        if order:
            sortable = {str(i) for i, name in enumerate(self.list_display) if name in self.sortable_by}
            if not all(part.rpartition("-")[2] in sortable for part in order.split(".")):
                # An unindexed column would sort the whole table; the default order is newest first.
                del self.params[ORDER_VAR]
        return super().get_ordering(request, queryset)


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    """Read-only: events are written by `event_record` and removed only by `manage.py audit prune`.

    Every filter and the search are exact matches on a column that leads an index ending in created_at, the list
    is ordered by created_at, and nothing counts the whole table (BoundedCountPaginator, no full count, no facets),
    so a page reads about one page of index whatever the table's size (bench/audit_events.py measures it). Two
    filters meet through one index and a row check, so a type combined with an outcome it never has reads every
    row of that type (the slowest page measured: 0.3 s, 0.7 s on a busy machine, for 120,000 such rows in 1,000,000).
    """

    list_display = ["time", "type", "outcome", "username", "client_id", "ip", "reason"]
    list_display_links = ["time"]
    list_filter = [EventTypeFilter, "outcome", ("created_at", EventDateFilter), UserFilter, ClientFilter, IpFilter]
    # Exact matches only (see get_search_results): `icontains` and `iexact` cannot use a b-tree index.
    search_fields = ["username", "client_id", "ip"]
    search_help_text = "An exact username, client ID or IP address."
    ordering = ["-created_at", "-seq"]
    sortable_by = ["time"]  # sorting by an unindexed column would sort the whole table
    list_per_page = 100
    paginator = BoundedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts are full COUNT(*)s
    actions = None
    fields = DETAIL_FIELDS
    readonly_fields = DETAIL_FIELDS
    export_row_limit = EXPORT_ROW_LIMIT

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Event | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Event | None = None) -> bool:
        return False

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        # PostgreSQL cannot compare a text holding NUL: refused here (400) rather than failing in the query (500).
        return lookup in ALLOWED_LOOKUPS and "\x00" not in value

    def get_changelist(self, request: HttpRequest, **kwargs):
        return EventChangeList

    def get_search_results(self, request: HttpRequest, queryset, search_term: str):
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q(username=term) | Q(client_id=term)
        try:
            match |= Q(ip=ipaddress.ip_address(term).compressed)
        except ValueError:
            pass  # not an address: comparing it with an inet column would be an error on PostgreSQL
        return queryset.filter(match), False

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("dashboard/", self.admin_site.admin_view(self.dashboard_view), name=f"{prefix}_dashboard"),
            path("export.csv", self.admin_site.admin_view(self.export_view), name=f"{prefix}_export"),
            *super().get_urls(),
        ]

    @admin.display(description="time", ordering="created_at")
    def time(self, event: Event):
        return event.created_at

    @admin.display(description="user")
    def account(self, event: Event) -> str:
        if event.user_id is None:
            return "-"
        events_url = reverse("admin:audit_event_changelist") + f"?user__id__exact={event.user_id}"
        opts = get_user_model()._meta
        try:
            user_url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[event.user_id])
        except NoReverseMatch:
            return format_html('#{} (<a href="{}">all their events</a>)', event.user_id, events_url)
        return format_html('<a href="{}">#{}</a> (<a href="{}">all their events</a>)', user_url, event.user_id,
                           events_url)

    @admin.display(description="detail")
    def detail_json(self, event: Event) -> str:
        return format_html('<pre class="audit-detail">{}</pre>', json.dumps(event.detail, indent=2, sort_keys=True))

    def changelist_view(self, request: HttpRequest, extra_context=None):
        extra_context = {**(extra_context or {}), "export_row_limit": self.export_row_limit}
        return super().changelist_view(request, extra_context)

    @method_decorator(require_safe)
    def export_view(self, request: HttpRequest) -> HttpResponse:
        """The list as filtered and searched, as a CSV file streamed row by row, up to `export_row_limit` rows."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseRedirect(f"{reverse('admin:audit_event_changelist')}?{ERROR_FLAG}=1")
        response = StreamingHttpResponse(
            event_csv_lines(changelist.queryset, limit=self.export_row_limit), content_type="text/csv; charset=utf-8"
        )
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response["Content-Disposition"] = f'attachment; filename="audit-events-{stamp}.csv"'
        return response

    @method_decorator(require_safe)
    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        """Failures and alerts per hour over 24 hours and per day over 7 days, and the latest alerts."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        now = timezone.now()
        hourly = charts.outcome_bar_chart(
            slug="hourly", title="Failures and alerts per hour, last 24 hours (UTC)",
            buckets=event_outcome_series(now=now, unit="hour", periods=24),
            label=charts.hour_label, long_label=charts.hour_long_label, label_every=3,
        )
        daily = charts.outcome_bar_chart(
            slug="daily", title="Failures and alerts per day, last 7 days (UTC)",
            buckets=event_outcome_series(now=now, unit="day", periods=7),
            label=charts.day_label, long_label=charts.day_long_label,
        )
        context = {
            **self.admin_site.each_context(request),
            "title": "Audit dashboard",
            "opts": self.opts,
            "charts": [hourly, daily],
            "alerts": event_recent_alerts(limit=20),
        }
        return TemplateResponse(request, "admin/audit/event/dashboard.html", context)
