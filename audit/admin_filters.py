"""Sidebar filters of the event list: each one is an exact match on an indexed column, and none counts rows."""

from __future__ import annotations

import ipaddress

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.auth import get_user_model

from audit.selectors import event_types


class EventTypeFilter(admin.SimpleListFilter):
    """The types named in audit/events.py as links; `?type=` also takes any other type name."""

    title = "type"
    parameter_name = "type"

    def lookups(self, request, model_admin):
        return [(name, name) for name in event_types()]

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(type=value) if value else queryset


class EventDateFilter(admin.DateFieldListFilter):
    """Django's date ranges (today, past 7 days, this month, this year), titled "date"."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.title = "date"


class ExactValueFilter(admin.SimpleListFilter):
    """A labelled text box that keeps the rest of the query string and filters one column by an exact value.

    `aliases` are other query-string names accepted for the same filter (such as `ip__exact` beside `ip`), so
    links written either way land here and are validated, never passed through raw.
    """

    template = "admin/audit/event/exact_filter.html"
    column: str = ""
    label: str = ""
    aliases: tuple[str, ...] = ()

    def __init__(self, request, params, model, model_admin):
        for alias in self.aliases:
            if alias in params and self.parameter_name not in params:
                params[self.parameter_name] = params.pop(alias)
            params.pop(alias, None)
        super().__init__(request, params, model, model_admin)

    def lookups(self, request, model_admin):
        return []

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str]:
        return [self.parameter_name, *self.aliases]

    def clean(self, value: str):
        """The value as stored in the column; IncorrectLookupParameters if it cannot be one."""
        return value

    def queryset(self, request, queryset):
        value = (self.value() or "").strip()
        if not value:
            return queryset
        return queryset.filter(**{self.column: self.clean(value)})

    def note(self) -> str:
        return ""

    def choices(self, changelist):
        mine = self.expected_parameters()
        yield {
            "param": self.parameter_name,
            "label": self.label,
            "value": self.value() or "",
            "input_id": "audit-filter-" + self.parameter_name.replace("_", "-"),
            "hidden": [(k, v) for k, values in changelist.filter_params.items() if k not in mine for v in values],
            "selected": bool((self.value() or "").strip()),
            "clear_url": changelist.get_query_string(remove=mine),
            "note": self.note(),
        }


class UserFilter(ExactValueFilter):
    """By the user's id: `?user__id__exact=` is how a user's page links to their events."""

    title = "user"
    parameter_name = "user__id__exact"
    column = "user_id"
    label = "User ID"

    def clean(self, value: str) -> int:
        if not value.isdigit() or len(value) > 18:
            raise IncorrectLookupParameters(f"{value!r} is not a user id.")
        return int(value)

    def note(self) -> str:
        value = (self.value() or "").strip()
        if not value.isdigit() or len(value) > 18:
            return ""
        User = get_user_model()
        name = User.objects.filter(pk=int(value)).values_list(User.USERNAME_FIELD, flat=True).first()
        return f"{name} (#{value})" if name is not None else f"#{value} (no such user now)"


class ClientFilter(ExactValueFilter):
    title = "client"
    parameter_name = "client_id"
    aliases = ("client_id__exact",)
    column = "client_id"
    label = "Client ID"

    def clean(self, value: str) -> str:
        if len(value) > 100:
            raise IncorrectLookupParameters("A client id has at most 100 characters.")
        return value


class IpFilter(ExactValueFilter):
    title = "IP address"
    parameter_name = "ip"
    aliases = ("ip__exact",)
    column = "ip"
    label = "IP address"

    def clean(self, value: str) -> str:
        try:
            # Stored normalised (audit/request_meta.py), so `::FFFF:0A00:0001` finds `::ffff:a00:1`.
            return ipaddress.ip_address(value).compressed
        except ValueError:
            raise IncorrectLookupParameters(f"{value!r} is not an IP address.") from None
