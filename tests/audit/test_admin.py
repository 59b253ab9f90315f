"""The event log in the admin: read-only, filterable, searchable, exportable as CSV, charted, and never counted in
full."""

import csv
import io
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit import events
from audit.admin import EventAdmin
from audit.export import event_csv_lines
from audit.integrity import chain_verify
from audit.models import Event
from audit.paginator import BoundedCountPaginator
from audit.services import event_record

LIST = "/admin/audit/event/"
EXPORT = "/admin/audit/event/export.csv"
DASHBOARD = "/admin/audit/event/dashboard/"


def record(*, type=events.LOGIN_FAILED, outcome=events.FAILURE, ip="10.0.0.1", **fields) -> Event:
    request = RequestFactory().get("/", REMOTE_ADDR=ip, HTTP_USER_AGENT=fields.pop("user_agent", "pytest"))
    event = event_record(type=type, outcome=outcome, request=request, **fields)
    assert event is not None
    return event


@pytest.fixture
def log(make_user, monkeypatch):
    """A small log: two users, a client, IPv4 and IPv6 addresses, failures, successes, an alert, an old event."""
    alice = make_user(username="alice")
    bob = make_user(username="bob")
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() - timedelta(days=40))
    old = record(user=alice, reason="bad_password", ip="10.0.0.9")
    monkeypatch.setattr(timezone, "now", real_now)
    return {
        "alice": alice,
        "bob": bob,
        "old": old,
        "alice_fail": record(user=alice, reason="bad_password"),
        "bob_fail": record(username="bob", reason="unknown_user", ip="10.0.0.2"),
        "alice_ok": record(type=events.LOGIN_SUCCEEDED, outcome=events.SUCCESS, user=alice, ip="10.0.0.2"),
        "token": record(type=events.TOKEN_ISSUED, outcome=events.SUCCESS, client_id="orders-web", ip="192.0.2.7"),
        "token_bad": record(type=events.TOKEN_FAILED, client_id="orders-web", reason="invalid_client",
                            ip="2001:db8::1"),
        "alert": record(type=events.ALERT_BRUTE_FORCE, outcome=events.ALERT, username="alice", reason="threshold"),
    }


def listed(response) -> list[int]:
    assert response.status_code == 200
    return [event.seq for event in response.context["cl"].result_list]


def newest_first(queryset) -> list[int]:
    return list(queryset.order_by("-created_at", "-seq").values_list("seq", flat=True))


@pytest.mark.django_db
def test_staff_see_the_event_list_newest_first_with_its_columns(admin_client, log):
    response = admin_client.get(LIST)

    assert listed(response) == newest_first(Event.objects.all())
    page = response.content.decode()
    for text in ("alert.brute_force", "orders-web", "192.0.2.7", "invalid_client", "Dashboard", "Export CSV"):
        assert text in page
    assert list(response.context["cl"].list_display) == ["time", "type", "outcome", "username", "client_id", "ip",
                                                         "reason"]


@pytest.mark.django_db
def test_the_event_list_sends_a_signed_in_non_staff_user_to_the_admin_login(client, make_user, log):
    client.force_login(make_user(username="plain"))

    for url in (LIST, EXPORT, DASHBOARD, f"{LIST}{log['alert'].pk}/change/"):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.django_db
def test_staff_without_the_view_permission_are_refused_the_log(client, make_user, log):
    client.force_login(make_user(username="helpdesk", is_staff=True))

    for url in (LIST, EXPORT, DASHBOARD):
        assert client.get(url).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"type": events.TOKEN_FAILED}, lambda log: Event.objects.filter(type=events.TOKEN_FAILED)),
        ({"outcome__exact": events.ALERT}, lambda log: Event.objects.filter(outcome=events.ALERT)),
        ({"user__id__exact": "ALICE"}, lambda log: Event.objects.filter(user=log["alice"])),
        ({"client_id": "orders-web"}, lambda log: Event.objects.filter(client_id="orders-web")),
        ({"client_id__exact": "orders-web"}, lambda log: Event.objects.filter(client_id="orders-web")),
        ({"ip": "10.0.0.2"}, lambda log: Event.objects.filter(ip="10.0.0.2")),
        ({"ip__exact": "2001:DB8:0::1"}, lambda log: Event.objects.filter(ip="2001:db8::1")),
        ({"ip": "10.0.0.2", "outcome__exact": events.SUCCESS},
         lambda log: Event.objects.filter(ip="10.0.0.2", outcome=events.SUCCESS)),
        ({"created_at__gte": "OLD_DAY", "created_at__lt": "NEXT_DAY"},
         lambda log: Event.objects.filter(pk=log["old"].pk)),
    ],
)
def test_each_filter_narrows_the_list_to_exactly_its_events(admin_client, log, params, expected):
    day = timezone.localtime(log["old"].created_at).replace(hour=0, minute=0, second=0, microsecond=0)
    substitutes = {"ALICE": str(log["alice"].pk), "OLD_DAY": str(day), "NEXT_DAY": str(day + timedelta(days=1))}
    query = {name: substitutes.get(value, value) for name, value in params.items()}

    seqs = listed(admin_client.get(LIST, query))

    assert seqs == newest_first(expected(log))
    assert seqs  # every case above matches something, so an ignored filter would fail the equality


@pytest.mark.django_db
def test_the_user_filter_names_the_user_it_shows(admin_client, log):
    page = admin_client.get(LIST, {"user__id__exact": log["alice"].pk}).content.decode()

    assert f"alice (#{log['alice'].pk})" in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("alice", Event.objects.filter(username="alice")),
        ("orders-web", Event.objects.filter(client_id="orders-web")),
        ("10.0.0.2", Event.objects.filter(ip="10.0.0.2")),
        (" 2001:DB8:0:0::1 ", Event.objects.filter(ip="2001:db8::1")),  # trimmed and normalised like stored IPs
    ],
)
def test_search_matches_an_exact_username_client_id_or_ip_address(admin_client, log, term, expected):
    assert expected.exists()
    assert listed(admin_client.get(LIST, {"q": term})) == newest_first(expected.all())


@pytest.mark.django_db
def test_search_does_not_match_part_of_a_value(admin_client, log):
    assert listed(admin_client.get(LIST, {"q": "ali"})) == []
    assert listed(admin_client.get(LIST, {"q": "orders"})) == []


@pytest.mark.django_db
@pytest.mark.parametrize("params", [{"ip": "not-an-ip"}, {"user__id__exact": "1 OR 1=1"},
                                    {"created_at__gte": "yesterday"}, {"client_id": "x" * 101}])
def test_a_malformed_filter_value_sends_the_list_back_with_the_error_flag(admin_client, log, params):
    response = admin_client.get(LIST, params)

    assert response.status_code == 302
    assert response["Location"].endswith("?e=1")


@pytest.mark.django_db
@pytest.mark.parametrize("lookup", ["reason", "detail__icontains", "hash__startswith", "user__password__startswith"])
def test_a_lookup_outside_the_filters_is_refused(admin_client, log, lookup):
    assert admin_client.get(LIST, {lookup: "x"}).status_code == 400


@pytest.mark.django_db
@pytest.mark.parametrize("params", [{"client_id": "a\x00b"}, {"type": "\x00"}, {"outcome__exact": "alert\x00"}])
def test_a_filter_value_holding_a_nul_byte_is_refused_before_it_reaches_the_database(admin_client, log, params):
    assert admin_client.get(LIST, params).status_code == 400
    assert admin_client.get(EXPORT, params).status_code == 400


@pytest.mark.django_db
def test_the_list_sorts_by_time_only_and_ignores_a_request_to_sort_by_another_column(admin_client, log):
    reason_column = str(EventAdmin.list_display.index("reason"))
    time_column = str(EventAdmin.list_display.index("time"))

    with CaptureQueriesContext(connection) as queries:
        by_reason = listed(admin_client.get(LIST, {"o": reason_column}))
    assert by_reason == newest_first(Event.objects.all())
    assert not any('ORDER BY "audit_event"."reason"' in query["sql"] for query in queries)

    oldest_first = listed(admin_client.get(LIST, {"o": time_column}))
    assert oldest_first == sorted(oldest_first)


@pytest.mark.django_db
def test_the_admin_can_neither_add_nor_change_nor_delete_an_event(admin_client, log):
    event = log["alice_fail"]
    before = list(Event.objects.order_by("seq").values_list("seq", "reason", "hash"))

    assert admin_client.get(f"{LIST}add/").status_code == 403
    assert admin_client.post(f"{LIST}add/", {"type": "login.failed", "outcome": "failure"}).status_code == 403
    assert admin_client.post(f"{LIST}{event.pk}/change/", {"reason": "nothing_to_see"}).status_code == 403
    assert admin_client.get(f"{LIST}{event.pk}/delete/").status_code == 403
    assert admin_client.post(f"{LIST}{event.pk}/delete/", {"post": "yes"}).status_code == 403
    bulk = admin_client.post(LIST, {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"})
    assert bulk.status_code == 200 and bulk.context["action_form"] is None

    # Refusals may be audited themselves (new events); the events that were there are untouched.
    after = Event.objects.filter(seq__lte=before[-1][0]).order_by("seq").values_list("seq", "reason", "hash")
    assert list(after) == before
    assert chain_verify().intact


@pytest.mark.django_db
def test_an_event_page_is_a_read_only_display_of_every_field(admin_client, log):
    event = log["alice_fail"]

    response = admin_client.get(f"{LIST}{event.pk}/change/")

    assert response.status_code == 200
    page = response.content.decode()
    assert event.hash in page and event.prev_hash in page and "bad_password" in page
    assert "&quot;" not in page.split('class="audit-detail"')[0][-200:]
    assert f"?user__id__exact={log['alice'].pk}" in page
    assert 'name="_save"' not in page and 'name="reason"' not in page


@pytest.mark.django_db
def test_the_csv_export_streams_the_filtered_list_with_a_header(admin_client, log):
    response = admin_client.get(EXPORT, {"outcome__exact": events.FAILURE, "client_id": "orders-web"})

    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(r'attachment; filename="audit-events-\d{8}T\d{6}Z\.csv"', response["Content-Disposition"])
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["seq", "time", "type", "outcome", "user_id", "username", "client_id", "ip", "user_agent",
                       "reason", "detail"]
    token_bad = log["token_bad"]
    assert rows[1:] == [[str(token_bad.seq), token_bad.created_at.isoformat(timespec="microseconds"),
                         events.TOKEN_FAILED, events.FAILURE, "", "", "orders-web", "2001:db8::1", "pytest",
                         "invalid_client", "{}"]]


@pytest.mark.django_db
def test_the_csv_export_follows_the_search_and_orders_newest_first(admin_client, log):
    response = admin_client.get(EXPORT, {"q": "alice"})

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [int(row[0]) for row in rows[1:]] == newest_first(Event.objects.filter(username="alice"))


@pytest.mark.django_db
def test_the_csv_export_defuses_cells_a_spreadsheet_would_run_as_formulas(admin_client, db):
    record(username='=HYPERLINK("http://evil.example","x")', user_agent="+cmd|' /C calc'!A0",
           reason="-2+3", client_id="@SUM(A1)", detail={"note": "=1+1"})

    response = admin_client.get(EXPORT, {"type": events.LOGIN_FAILED})

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["username"] == '\'=HYPERLINK("http://evil.example","x")'
    assert row["user_agent"] == "'+cmd|' /C calc'!A0"
    assert row["reason"] == "'-2+3"
    assert row["client_id"] == "'@SUM(A1)"
    assert row["detail"] == '{"note":"=1+1"}'  # starts with "{": harmless


@pytest.mark.django_db
def test_the_csv_export_stops_at_its_row_limit(admin_client, log, monkeypatch):
    monkeypatch.setattr(EventAdmin, "export_row_limit", 3)

    response = admin_client.get(EXPORT)

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 1 + 3
    assert [int(row[0]) for row in rows[1:]] == newest_first(Event.objects.all())[:3]


@pytest.mark.django_db
def test_the_csv_export_pages_through_events_sharing_a_timestamp_without_losing_or_repeating_one(db, monkeypatch):
    moment = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: moment)
    for _ in range(5):
        record()
    monkeypatch.setattr(timezone, "now", lambda: moment - timedelta(seconds=1))
    for _ in range(3):
        record()

    lines = list(event_csv_lines(Event.objects.all(), limit=7, chunk_size=2))

    assert [int(line.split(",")[0]) for line in lines[1:]] == [5, 4, 3, 2, 1, 8, 7]


@pytest.mark.django_db
def test_the_csv_export_refuses_a_malformed_filter_and_a_post(admin_client, log):
    response = admin_client.get(EXPORT, {"ip": "nope"})
    assert response.status_code == 302 and response["Location"].endswith("?e=1")
    assert admin_client.post(EXPORT).status_code == 405


@pytest.mark.django_db
def test_the_dashboard_charts_failures_and_alerts_per_hour_and_per_day_as_svg(admin_client, log):
    response = admin_client.get(DASHBOARD)

    assert response.status_code == 200
    page = response.content.decode()
    hourly, daily = response.context["charts"]
    failures_now = Event.objects.filter(outcome=events.FAILURE, created_at__gte=timezone.now() - timedelta(hours=1))
    assert hourly.rows[-1][1:] == (failures_now.count(), 1)
    assert sum(row[1] for row in daily.rows) == failures_now.count()  # the 40-day-old failure is outside 7 days
    assert hourly.summary.startswith(f"{failures_now.count()} failures, most in ")
    assert page.count('<svg class="audit-chart-svg"') == 2 and 'role="img"' in page
    assert f"{failures_now.count()} failures</title>" in page and "1 alert</title>" in page
    assert "alert.brute_force" in page.split("Latest alerts")[1]
    assert f"{LIST}{log['alert'].pk}/change/" in page


@pytest.mark.django_db
def test_the_dashboard_uses_no_inline_script_or_style(admin_client, log):
    page = admin_client.get(DASHBOARD).content.decode()

    assert " style=" not in page and "<style" not in page
    assert not re.search(r"<script(?![^>]*\bsrc=)", page)


@pytest.mark.django_db
def test_the_dashboard_reads_the_log_in_a_fixed_number_of_queries(admin_client, log):
    for _ in range(30):
        record(type=events.ALERT_PASSWORD_SPRAYING, outcome=events.ALERT)

    with CaptureQueriesContext(connection) as queries:
        assert admin_client.get(DASHBOARD).status_code == 200

    # the hourly and the daily series (one grouped query each) and the latest alerts, whatever the number of events
    reads = [query["sql"] for query in queries if Event._meta.db_table in query["sql"]]
    assert len(reads) == 3, reads
    assert sum("GROUP BY" in sql for sql in reads) == 2


@pytest.mark.django_db
@pytest.mark.parametrize("params", [{}, {"type": events.LOGIN_FAILED}, {"q": "alice"}, {"ip": "10.0.0.2"},
                                    {"user__id__exact": "1", "outcome__exact": events.FAILURE}])
def test_the_list_never_counts_the_whole_table(admin_client, log, params):
    with CaptureQueriesContext(connection) as queries:
        assert admin_client.get(LIST, params).status_code == 200

    counts = [query["sql"] for query in queries if "COUNT(" in query["sql"].upper()]
    assert counts, "the paginator counts with a bounded subquery"
    for sql in counts:
        assert re.search(r"LIMIT \d+", sql), sql


@pytest.mark.django_db
def test_a_long_list_says_more_than_the_count_limit_instead_of_counting_on(admin_client, log, monkeypatch):
    monkeypatch.setattr(BoundedCountPaginator, "count_limit", 4)
    monkeypatch.setattr(EventAdmin, "list_per_page", 2)

    response = admin_client.get(LIST)

    assert response.context["cl"].paginator.is_capped
    assert response.context["cl"].paginator.num_pages == 2
    assert "More than 4 events" in response.content.decode()
    assert admin_client.get(LIST, {"p": "3"}).status_code == 302  # past the counted pages: back with ?e=1

