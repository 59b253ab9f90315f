"""Lean statements for the token hot paths: rows read and written as plain SQL, built once per process.

Django's SQL compiler costs more CPU than the database on these paths (issue 8), so the statements are written
here from the models' own table and column names, and model instances are built from the rows with
`Model.from_db()` and the fields' own database converters, exactly as the ORM would build them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from django.db import connections, router
from django.db.models import Field, Model


def column_name(model: type[Model], name: str, using: str) -> str:
    """The quoted column of the field `name` of `model`."""
    return connections[using].ops.quote_name(model._meta.get_field(name).column)


def table_name(model: type[Model], using: str) -> str:
    """The quoted table of `model`."""
    return connections[using].ops.quote_name(model._meta.db_table)


class RowShape:
    """Columns of a model (all its concrete ones unless named), as selected under one table alias, and the values
    or the instance the ORM would make of them."""

    def __init__(self, model: type[Model], alias: str, using: str, names: tuple[str, ...] = ()) -> None:
        connection = connections[using]
        self.model, self.using = model, using
        self.fields = [model._meta.get_field(name) for name in names] if names else model._meta.concrete_fields
        self.field_names = [field.attname for field in self.fields]
        quote = connection.ops.quote_name
        self.columns = ", ".join(f"{alias}.{quote(field.column)}" for field in self.fields)
        self._converters: list[tuple[int, list[Callable], object]] = []
        for index, field in enumerate(self.fields):
            col = field.get_col(alias)
            converters = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
            if converters:
                self._converters.append((index, converters, col))

    def __len__(self) -> int:
        return len(self.fields)

    def values(self, row: Sequence) -> list:
        """The column values as the ORM would hand them out (the fields' database converters applied)."""
        values = list(row)
        connection = connections[self.using]
        for index, converters, col in self._converters:
            value = values[index]
            for converter in converters:
                value = converter(value, col, connection)
            values[index] = value
        return values

    def instance(self, row: Sequence) -> Model:
        """The model instance the ORM would build from a row of all the model's concrete columns."""
        return self.model.from_db(self.using, self.field_names, self.values(row))


@functools.cache
def row_shape(model: type[Model], alias: str, using: str, names: tuple[str, ...] = ()) -> RowShape:
    """The RowShape of `model` under `alias`, built once per process and database alias."""
    return RowShape(model, alias, using, names)


def insert_fields(model: type[Model]) -> tuple[Field, ...]:
    """The fields an INSERT of a new `model` row writes: every concrete one but the primary key, in model order."""
    meta = model._meta
    return tuple(field for field in meta.concrete_fields if field is not meta.pk)


def insert_values(instance: Model, fields: Sequence[Field], using: str) -> list:
    """The database values of `fields` for a new row, as `save()` computes them: each field's `pre_save` (auto_now,
    DOT's token checksum), then its `get_db_prep_save`."""
    connection = connections[using]
    return [field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields]


def mark_inserted(instance: Model, pk: object, using: str) -> Model:
    """The instance as `save()` leaves a new one: its primary key set and its state no longer "adding"."""
    instance.pk = pk
    instance._state.adding = False
    instance._state.db = using
    return instance


@functools.cache
def _insert_statement(model: type[Model], using: str) -> tuple[str, tuple[Field, ...]]:
    quote = connections[using].ops.quote_name
    meta = model._meta
    fields = insert_fields(model)
    # RETURNING works on PostgreSQL and on SQLite 3.35+, the floor Django 5.2 supports.
    statement = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(field.column) for field in fields)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {quote(meta.pk.column)}"
    )
    return statement, fields


def row_insert(instance: Model) -> Model:
    """INSERT a new instance in one statement and give it its primary key, without `Model.save()`.

    The row is the one `save()` would write (insert_values). No `pre_save`/`post_save` signal is sent: nothing in
    this project or in DOT listens for the token models' signals, and these rows are written on every token request.
    """
    model = type(instance)
    using = router.db_for_write(model, instance=instance)
    statement, fields = _insert_statement(model, using)
    with connections[using].cursor() as cursor:
        cursor.execute(statement, insert_values(instance, fields, using))
        pk = cursor.fetchone()[0]
    return mark_inserted(instance, pk, using)
