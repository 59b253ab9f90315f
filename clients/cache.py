"""The clients the token endpoint authenticates, kept per process and checked against one generation row per use."""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass

from django.db import connections, router
from django.db.models.base import ModelState

from clients.models import Client, ClientCacheGeneration


@dataclass(frozen=True)
class _Entry:
    generation: str
    client: Client


class Unread(enum.Enum):
    UNREAD = "unread"


UNREAD = Unread.UNREAD  # get()'s default: the generation is read by get() itself


def generation_column(connection) -> tuple[str, int]:
    """A scalar subquery that reads the current generation, and the one parameter it takes, for a caller that
    reads it in the same statement as rows of its own (idp/introspection.py): one round trip instead of two."""
    table = connection.ops.quote_name(ClientCacheGeneration._meta.db_table)
    return f"(SELECT value FROM {table} WHERE id = %s)", ClientCacheGeneration.ROW  # noqa: S608


def _generation_read() -> str | None:
    """The current generation value, or None when the row is missing (then nothing may be cached)."""
    connection = connections[router.db_for_read(ClientCacheGeneration)]
    subquery, parameter = generation_column(connection)
    # One statement without the ORM's compiler: this read is paid on every token request. Always one row.
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {subquery}", [parameter])
        return cursor.fetchone()[0]


def _client_load(client_id: str) -> Client | None:
    """The client with its roles prefetched (claims.client_role_names reads them), or None."""
    if "\x00" in client_id:
        return None  # PostgreSQL refuses to compare a NUL byte (an error that would end the transaction); no id has one
    return Client.objects.prefetch_related("roles").filter(client_id=client_id).first()


def _private_copy(client: Client) -> Client:
    """Each caller gets its own instance, so nothing a request sets on it can reach another request.

    What copy.copy() makes of a model instance (Model.__getstate__: the attributes, a copy of the ModelState and of
    its related-object cache), built directly: copy.copy goes through pickling's __reduce_ex__, model_unpickle and
    __setstate__, five times the cost, paid on every token request. The prefetched roles' cache is copied too."""
    duplicate = Client.__new__(Client)
    duplicate.__dict__.update(client.__dict__)
    state = duplicate._state = ModelState()
    state.db, state.adding = client._state.db, client._state.adding
    state.fields_cache = dict(client._state.fields_cache)
    duplicate._prefetched_objects_cache = dict(client._prefetched_objects_cache)
    return duplicate


class ClientCache:
    """Clients by client_id, each trusted only under the generation it was loaded under.

    Every change to a client, its roles or a role's name writes a new generation in its own transaction
    (clients/signals.py, ClientQuerySet.update), so the very next lookup in any process or instance reloads the row.
    The generation is read before the row: a row loaded after a read is at least as new as the value read, so an
    entry never outlives the change that made it stale. Unknown client_ids are not remembered, so the memory held is
    bounded by the number of registered clients.
    """

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._generation: str | None = None
        self._lock = threading.Lock()

    def get(self, client_id: str, *, generation: str | None | Unread = UNREAD) -> Client | None:
        """The client (a private copy, roles prefetched), or None when there is none; costs one query when cached.

        A caller that has just read the generation in a statement of its own (generation_column) passes that value
        and saves the query; None then means the row was missing."""
        if generation is UNREAD:
            generation = _generation_read()
        if generation is None:
            return _client_load(client_id)
        entry = self._entries.get(client_id)
        if entry is not None and entry.generation == generation:
            return _private_copy(entry.client)
        client = _client_load(client_id)
        with self._lock:
            if generation != self._generation:
                # Rows of an older generation may name deleted clients; drop them all at once.
                self._entries = {}
                self._generation = generation
            if client is not None:
                self._entries[client_id] = _Entry(generation=generation, client=client)
        return _private_copy(client) if client is not None else None

    def clear(self) -> None:
        """Forget every entry, as a freshly started process has none."""
        with self._lock:
            self._entries = {}
            self._generation = None


client_cache = ClientCache()


def client_cached_get(*, client_id: str, generation: str | None | Unread = UNREAD) -> Client | None:
    """The client with this client_id from this process's cache, current as of this call (or as of `generation`,
    read by the caller in this request); None when there is none."""
    return client_cache.get(client_id, generation=generation)
