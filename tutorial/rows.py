"""One row of a model by a fixed condition, in SQL made once per database kind.

The ORM builds a query's SQL again every time it runs: about 0.35 ms of CPU for a one-row lookup
on this project's machines, against 0.05 ms to run the statement and make the instance. Every
request reads its session and its user, and every console its sandbox's row; a class that starts
together pays those reads at once (a warm Start made about eight of them). :func:`fetch_one` keeps
the ORM's meaning (the same columns, the values prepared and converted by the same field and
backend code, an instance as ``QuerySet.first()`` makes it) and only skips building the SQL.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model

M = TypeVar("M", bound=Model)

OPERATORS = frozenset({"=", ">"})
BY_PK = (("pk", "="),)  # the ``where`` of a read by primary key

_prepared: dict[tuple, tuple[str, list, list[str], list]] = {}


def _prepare(model: type[Model], where: tuple[tuple[str, str], ...], connection):
    key = (model, where, connection.vendor)
    prepared = _prepared.get(key)
    if prepared is None:
        quote = connection.ops.quote_name
        meta = model._meta
        fields = list(meta.concrete_fields)
        where_fields = [_field(model, name) for name, _ in where]
        conditions = []
        for field, (_, operator) in zip(where_fields, where):
            if operator not in OPERATORS:
                raise ValueError(f"operator {operator!r} is not one of {sorted(OPERATORS)}")
            conditions.append(f"{quote(field.column)} {operator} %s")
        sql = (f"SELECT {', '.join(quote(field.column) for field in fields)} FROM {quote(meta.db_table)} "
               f"WHERE {' AND '.join(conditions)} LIMIT 1")
        # What the compiler would apply to each column of the result (backend's, then field's).
        converters = []
        for position, field in enumerate(fields):
            column = field.get_col(meta.db_table)
            found = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
            if found:
                converters.append((position, found, column))
        prepared = (sql, where_fields, [field.attname for field in fields], converters)
        _prepared[key] = prepared
    return prepared


def _field(model: type[Model], name: str):
    return model._meta.pk if name == "pk" else model._meta.get_field(name)


def fetch_one(model: type[M], where: tuple[tuple[str, str], ...], values: tuple[Any, ...], *,
              using: str = DEFAULT_DB_ALIAS) -> M | None:
    """The row of ``model`` where, for each ``(field name, operator)`` of ``where`` (operators:
    ``=`` and ``>``), the field compares so with the value at the same place in ``values``; as an
    instance, or None when there is none (the first one, unordered, if several). Sync."""
    connection = connections[using]
    sql, fields, attnames, converters = _prepare(model, where, connection)
    params = [field.get_db_prep_value(value, connection) for field, value in zip(fields, values, strict=True)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    row = list(row)
    for position, found, column in converters:
        value = row[position]
        for converter in found:
            value = converter(value, column, connection)
        row[position] = value
    return model.from_db(using, attnames, row)
