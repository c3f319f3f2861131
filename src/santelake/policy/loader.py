"""Read ``policies/`` into a ``PolicySet``, checking each file's shape with file:line faults.

Layout: ``platform.yaml`` (platform-wide rules), ``people.yaml`` (who may be named),
``staff.yaml`` (staff roles), ``projects/<id>.yaml`` (one research project each).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from santelake.policy.document import (
    AnyOf,
    Choice,
    Day,
    Document,
    Items,
    Record,
    Scalar,
    Spec,
    Table,
    Text,
    Whole,
    read,
)
from santelake.policy.errors import Fault, FaultKind, PolicyError
from santelake.policy.model import (
    Dataset,
    LegalBasis,
    Mask,
    MaskKind,
    Origin,
    Person,
    Platform,
    PolicySet,
    Project,
    RowFilter,
    SharedTable,
    StaffOnly,
    StaffRole,
)
from santelake.schema import Sensitivity

PLATFORM_FILE = "platform.yaml"
PEOPLE_FILE = "people.yaml"
STAFF_FILE = "staff.yaml"
PROJECTS_DIR = "projects"

NAME = r"[a-z][a-z0-9_]*"
USERNAME = Text(r"[a-z0-9][a-z0-9._@-]*", "a Keycloak username (lower case)")
TABLE_NAME = Text(rf"{NAME}\.{NAME}", "a table as namespace.table")
COLUMN = Text(NAME, "a column name")
CLASSES = Choice([s.value for s in Sensitivity])
ROLES = Choice([r.value for r in StaffRole])
WORDS = Text(hint="text")

PLATFORM_SPEC = Record({
    "catalog": Text(NAME, "a catalog name"),
    "research": Record({
        "ceiling": CLASSES,
        "direct_identifier_mask": Choice([MaskKind.PROJECT_PSEUDONYM.value]),
    }, required=("ceiling", "direct_identifier_mask")),
    "legal_bases": Record({
        "reference_methodologies": Table(Text(r"MR-\d{3}", "a CNIL reference methodology, MR-NNN"), CLASSES),
        "authorisation_ceiling": CLASSES,
    }, required=("reference_methodologies", "authorisation_ceiling")),
    "staff_only": Items(Record({
        "schema": Text(NAME, "a schema name"), "catalog": Text(NAME, "a Trino catalog name"),
        "roles": Items(ROLES, minimum=1, unique=True), "reason": WORDS,
    }, required=("schema", "roles", "reason"))),
    "shared_tables": Items(Record({"table": TABLE_NAME, "reason": WORDS}, required=("table", "reason"))),
}, required=("catalog", "research", "legal_bases", "staff_only", "shared_tables"))

PEOPLE_SPEC = Record({
    "people": Items(Record({"username": USERNAME, "name": WORDS, "organisation": WORDS},
                           required=("username", "name", "organisation")), minimum=1),
}, required=("people",))

STAFF_SPEC = Record({
    "roles": Record({role.value: Record({"members": Items(USERNAME, unique=True)}, required=("members",))
                     for role in StaffRole}),
}, required=("roles",))

MASK_SPEC: Spec = AnyOf(
    Choice([MaskKind.YEAR.value, MaskKind.MONTH.value, MaskKind.PROJECT_PSEUDONYM.value]),
    Record({"prefix": Whole(1)}, required=("prefix",), hint="{prefix: N}"),
)
ROW_SPEC = Record({
    "column": COLUMN,
    "in": Items(Scalar(), minimum=1, unique=True),
    "between": Items(Scalar(), exactly=2),
}, required=("column",), one_of=(("in", "between"),))
DATASET_SPEC = Record({
    "table": TABLE_NAME,
    "columns": Items(COLUMN, unique=True),
    "sensitivity": Items(CLASSES, unique=True),
    "masks": Table(COLUMN, MASK_SPEC),
    "rows": Items(ROW_SPEC),
}, required=("table",))
PROJECT_SPEC = Record({
    "title": WORDS,
    "purpose": WORDS,
    "legal_basis": Record({
        "reference_methodology": Text(r"MR-\d{3}", "a CNIL reference methodology, MR-NNN"),
        "authorisation": WORDS,
    }, one_of=(("reference_methodology", "authorisation"),)),
    "responsible": USERNAME,
    "members": Items(USERNAME, minimum=1, unique=True),
    "start": Day(),
    "end": Day(),
    "datasets": Items(DATASET_SPEC, minimum=1),
}, required=("title", "purpose", "legal_basis", "responsible", "members", "start", "end", "datasets"))


def _origin(doc: Document, key: str) -> Origin:
    line, column = doc.where(key)
    return Origin(doc.path, key, line, column)


def _display(root: Path, path: Path) -> Path:
    try:
        return path.relative_to(root.parent) if root.is_absolute() else path
    except ValueError:
        return path


def _platform(doc: Document) -> Platform:
    data: dict[str, Any] = doc.data
    research, bases = data["research"], data["legal_bases"]
    staff_only = tuple(
        StaffOnly(item["schema"], tuple(StaffRole(r) for r in item["roles"]), item["reason"],
                  _origin(doc, f"staff_only[{i}]"), item.get("catalog"))
        for i, item in enumerate(data["staff_only"])
    )
    shared = tuple(
        SharedTable(item["table"].split(".")[0], item["table"].split(".")[1], item["reason"],
                    _origin(doc, f"shared_tables[{i}]"))
        for i, item in enumerate(data["shared_tables"])
    )
    return Platform(
        catalog=data["catalog"],
        research_ceiling=Sensitivity(research["ceiling"]),
        direct_identifier_mask=MaskKind(research["direct_identifier_mask"]),
        methodology_ceilings={k: Sensitivity(v) for k, v in sorted(bases["reference_methodologies"].items())},
        authorisation_ceiling=Sensitivity(bases["authorisation_ceiling"]),
        staff_only=staff_only, shared_tables=shared, origin=_origin(doc, ""),
    )


def _mask(doc: Document, key: str, column: str, value: Any) -> Mask:
    if isinstance(value, dict):
        return Mask(column, MaskKind.PREFIX, _origin(doc, key), length=value["prefix"])
    return Mask(column, MaskKind(value), _origin(doc, key))


def _dataset(doc: Document, key: str, data: dict[str, Any]) -> Dataset:
    namespace, table = data["table"].split(".")
    masks = tuple(_mask(doc, f"{key}.masks.{column}", column, value)
                  for column, value in sorted(data.get("masks", {}).items()))
    rows = []
    for i, row in enumerate(data.get("rows", [])):
        origin = _origin(doc, f"{key}.rows[{i}]." + ("in" if "in" in row else "between"))
        column = _origin(doc, f"{key}.rows[{i}].column")
        if "in" in row:
            rows.append(RowFilter(row["column"], origin, column, values=tuple(row["in"])))
        else:
            rows.append(RowFilter(row["column"], origin, column, low=row["between"][0], high=row["between"][1]))
    return Dataset(
        namespace=namespace, table=table, columns=tuple(data.get("columns", ())),
        sensitivities=tuple(Sensitivity(s) for s in data.get("sensitivity", ())),
        masks=masks, rows=tuple(rows), origin=_origin(doc, key),
        column_origins=tuple(_origin(doc, f"{key}.columns[{i}]") for i in range(len(data.get("columns", ())))),
    )


def _project(doc: Document) -> Project:
    data: dict[str, Any] = doc.data
    basis = data["legal_basis"]
    return Project(
        id=doc.path.stem, title=data["title"], purpose=data["purpose"],
        legal_basis=LegalBasis(basis.get("reference_methodology"), basis.get("authorisation"),
                               _origin(doc, "legal_basis." + next(iter(basis)))),
        responsible=data["responsible"], responsible_origin=_origin(doc, "responsible"), members=tuple(data["members"]),
        start=data["start"], end=data["end"],
        datasets=tuple(_dataset(doc, f"datasets[{i}]", d) for i, d in enumerate(data["datasets"])),
        origin=_origin(doc, ""),
        member_origins=tuple(_origin(doc, f"members[{i}]") for i in range(len(data["members"]))),
    )


def read_policies(root: Path) -> tuple[PolicySet | None, list[Fault]]:
    """The policy set and the shape faults; no set when any file is malformed."""
    faults: list[Fault] = []
    docs: dict[str, Document] = {}
    for name, spec in ((PLATFORM_FILE, PLATFORM_SPEC), (PEOPLE_FILE, PEOPLE_SPEC), (STAFF_FILE, STAFF_SPEC)):
        path = root / name
        if not path.exists():
            faults.append(Fault(_display(root, path), 0, 0, FaultKind.SCHEMA, "", f"missing file; create {name}"))
            continue
        docs[name] = read(path, spec, _display(root, path))
    projects: list[Document] = []
    for path in sorted((root / PROJECTS_DIR).glob("*.y*ml")):
        doc = read(path, PROJECT_SPEC, _display(root, path))
        if path.suffix != ".yaml" or not _is_name(path.stem):
            doc.add(FaultKind.SCHEMA, "", "a project file is named <id>.yaml, the id in lower-case snake_case")
        projects.append(doc)
    for doc in [*docs.values(), *projects]:
        faults.extend(doc.faults)
    if faults:
        return None, sorted(faults)
    people_doc, staff_doc = docs[PEOPLE_FILE], docs[STAFF_FILE]
    people = tuple(Person(p["username"], p["name"], p["organisation"], _origin(people_doc, f"people[{i}]"))
                   for i, p in enumerate(people_doc.data["people"]))
    roles: dict[str, Any] = staff_doc.data["roles"]
    staff = {StaffRole(r): tuple(v["members"]) for r, v in roles.items()}
    staff_origins = {StaffRole(r): tuple(_origin(staff_doc, f"roles.{r}.members[{i}]")
                                         for i in range(len(v["members"]))) for r, v in roles.items()}
    return PolicySet(root, _platform(docs[PLATFORM_FILE]), people, staff, staff_origins,
                     tuple(_project(doc) for doc in projects)), []


def _is_name(text: str) -> bool:
    return re.fullmatch(NAME, text) is not None


def load_policies(root: Path) -> PolicySet:
    """The policy set, or a ``PolicyError`` listing every shape fault."""
    policies, faults = read_policies(root)
    if policies is None:
        raise PolicyError(faults)
    return policies

