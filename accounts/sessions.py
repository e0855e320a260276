"""Sessions in the database (Django's own store), read without building the query each time.

Every request and every console's websocket reads its session row; Django's store builds the same
``SELECT ... WHERE session_key = %s AND expire_date > %s`` through the ORM on each read.
:func:`tutorial.rows.fetch_one` runs it with SQL made once. Same table, same rows, same rules
(an expired or unknown key reads as no session); writes are Django's.
"""

from __future__ import annotations

from django.contrib.sessions.backends import db
from django.utils import timezone

from tutorial.rows import fetch_one

CURRENT = (("session_key", "="), ("expire_date", ">"))


class SessionStore(db.SessionStore):
    def _get_session_from_db(self):
        session = fetch_one(self.model, CURRENT, (self.session_key, timezone.now()))
        if session is None:
            self._session_key = None
        return session
