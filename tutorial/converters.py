"""URL converters. ``id``: a database id, at most 18 digits, so it always fits a 64-bit column.

Django's ``int`` matches any length of digits: ``/classrooms/99999999999999999999/`` reached the
database and SQLite raised OverflowError (PostgreSQL: a numeric range error), a 500. With ``id``
such a path matches nothing and is a 404 like any unknown id.
"""


class DatabaseIdConverter:
    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value) -> str:
        return str(int(value))
