"""A readable report of projects, members, datasets and end dates, for compliance teams."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from santelake.policy.grants import column_grants
from santelake.policy.model import PolicySet, Project
from santelake.schema import TableSchema

EXPIRES_SOON_DAYS = 60


def status(project: Project, day: dt.date) -> str:
    if day > project.end:
        return "ended"
    if day < project.start:
        return "not started"
    left = (project.end - day).days
    return f"active, ends in {left} days" if left <= EXPIRES_SOON_DAYS else "active"


def report(policies: PolicySet, schemas: Mapping[str, TableSchema], day: dt.date) -> str:
    """Markdown: one section per project, then the staff roles."""
    lines = [f"# Access policies on {day}", "",
             "| project | status | start | end | legal basis | responsible | members |",
             "|---|---|---|---|---|---|---|"]
    for p in sorted(policies.projects, key=lambda p: p.id):
        lines.append(f"| {p.id} | {status(p, day)} | {p.start} | {p.end} | {p.legal_basis} | {p.responsible} "
                     f"| {', '.join(p.members)} |")
    for p in sorted(policies.projects, key=lambda p: p.id):
        lines += ["", f"## {p.id}: {p.title}", "", f"- Purpose: {p.purpose}", f"- Legal basis: {p.legal_basis}",
                  f"- Responsible: {p.responsible}", f"- Members: {', '.join(p.members)}",
                  f"- From {p.start} to {p.end} ({status(p, day)})", f"- File: {p.origin.path}", "",
                  "| table | columns | hidden | rows |", "|---|---|---|---|"]
        for d in p.datasets:
            declared = schemas.get(d.full_name)
            grants = column_grants(d, declared) if declared else ()
            shown = ", ".join(g.column.name + (f" ({g.mask.describe()})" if g.mask else "")
                              for g in grants if g.granted)
            hidden = ", ".join(g.column.name for g in grants if not g.granted) or "none"
            rows = " and ".join(r.describe() for r in d.rows) or "all"
            lines.append(f"| {d.full_name} | {shown} | {hidden} | {rows} |")
    lines += ["", "## Staff roles", "", "| role | members |", "|---|---|"]
    lines += [f"| {role} | {', '.join(users) or '-'} |" for role, users in sorted(policies.staff.items())]
    return "\n".join(lines) + "\n"
