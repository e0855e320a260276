"""The class results as CSV, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io



from .models import Classroom, Membership
from .dashboard import dashboard_snapshot


CSV_HEADER = [
    "learner", "username", "lesson", "step", "opened_at", "passed_at", "attempts", "failed_attempts",
    "hints_used", "solution_viewed", "last_feedback",
]


CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_safe(value) -> str:
    """Spreadsheets run cells starting with = + - @ (tab, CR) as formulas: prefix them with '
    (learner-typed names, check feedback). Also after each ';': a spreadsheet in a locale whose
    separator is ';' splits the cell there, and each piece starts a cell of its own."""
    text = "" if value is None else str(value)
    return ";".join("'" + part if part.lstrip(" ")[:1] in CSV_FORMULA_STARTS else part for part in text.split(";"))


def export_csv(classroom: Classroom) -> str:
    snapshot = dashboard_snapshot(classroom)
    usernames = dict(
        Membership.objects.filter(classroom=classroom).values_list("user_id", "user__username")
    )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for member in snapshot["members"]:
        for lesson in snapshot["lessons"]:
            for step in lesson["steps"]:
                cell = snapshot["cells"].get(f"{member['user']}:{lesson['slug']}:{step['slug']}")
                if cell is None:
                    continue
                writer.writerow([_csv_safe(v) for v in (
                    member["name"], usernames.get(member["user"], ""), lesson["slug"], step["slug"],
                    cell["opened_at"], cell["passed_at"] or "", cell["attempts"], cell["failures"],
                    cell["hints_used"], "yes" if cell["solution_viewed"] else "no", cell["feedback"],
                )])
    return out.getvalue()
