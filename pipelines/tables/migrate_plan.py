"""What `lakecast migrate` would change to bring an existing governed table to its spec.

The plan is a list of typed steps, each one idempotent and applied in order (a layout
change first: it rewrites the data, the ALTERs after it are metadata only). Differences
migrate cannot fix without losing data (a type change, a column the spec no longer has,
a NOT NULL column that existing rows have no value for) are blockers, never steps.
`tables.ensure.ensure_tables` reports the same differences, so a table migrate leaves is
one `lakecast init` accepts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from conf import LakecastConfig
from pipelines.tables.specs import Column, TableSpec, create_table_sql, sql_quote

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@dataclass(frozen=True)
class Step:
    """One change to one table; `problem` is what init reports while the step is pending."""

    table: str

    @property
    def problem(self) -> str:
        raise NotImplementedError

    def statements(self) -> list[str]:
        """The SQL that makes the change (empty for steps applied by code: see Repartition)."""
        return []


@dataclass(frozen=True)
class CreateTable(Step):
    ddl: tuple[str, ...]  # CREATE TABLE, CHECK constraints included

    @property
    def problem(self) -> str:
        return "table is missing"

    def statements(self) -> list[str]:
        return list(self.ddl)


@dataclass(frozen=True)
class RenameTable(Step):
    """The table of `spec.renamed_from` becomes this one: a catalog rename, rows and history kept.
    Applied before the table's other steps, which were planned against it."""

    old: str

    @property
    def problem(self) -> str:
        return f"table is missing: {self.old}, its previous release's table, is to be renamed to it"

    def statements(self) -> list[str]:
        return [f"ALTER TABLE {self.old} RENAME TO {self.table}"]


@dataclass(frozen=True)
class Repartition(Step):
    """Rebuild the table with a new partitioning, every row kept (tables.repartition)."""

    current: tuple[str, ...]
    wanted: tuple[str, ...]

    @property
    def problem(self) -> str:
        def show(cols: tuple[str, ...]) -> str:
            return f"partitioned by ({', '.join(cols)})" if cols else "not partitioned"
        return f"table is {show(self.current)}, expected {show(self.wanted)}"


@dataclass(frozen=True)
class AddColumn(Step):
    column: Column

    @property
    def problem(self) -> str:
        return f"column {self.column.name} ({self.column.type}) is missing"

    def statements(self) -> list[str]:
        return [f"ALTER TABLE {self.table} ADD COLUMNS ({replace(self.column, nullable=True).ddl()})"]


@dataclass(frozen=True)
class SetNotNull(Step):
    """Applied by rebuilding the table (as Repartition): Spark refuses SET NOT NULL in place."""

    column: str

    @property
    def problem(self) -> str:
        return f"column {self.column} should be NOT NULL"



@dataclass(frozen=True)
class SetColumnComment(Step):
    column: str
    comment: str

    @property
    def problem(self) -> str:
        return f"column {self.column} comment differs from {self.comment!r}"

    def statements(self) -> list[str]:
        return [f"ALTER TABLE {self.table} ALTER COLUMN `{self.column}` COMMENT '{sql_quote(self.comment)}'"]


@dataclass(frozen=True)
class SetTableComment(Step):
    comment: str

    @property
    def problem(self) -> str:
        return f"table comment differs from {self.comment!r}"

    def statements(self) -> list[str]:
        return [f"COMMENT ON TABLE {self.table} IS '{sql_quote(self.comment)}'"]


@dataclass(frozen=True)
class AddConstraint(Step):
    name: str
    expr: str
    replaces: str | None = None  # the expression of a same-named constraint to drop first

    @property
    def problem(self) -> str:
        if self.replaces is not None:
            return f"CHECK constraint {self.name} is ({self.replaces}), expected ({self.expr})"
        return f"CHECK constraint {self.name} ({self.expr}) is missing"

    def statements(self) -> list[str]:
        drop = [f"ALTER TABLE {self.table} DROP CONSTRAINT IF EXISTS {self.name}"] if self.replaces else []
        return [*drop, f"ALTER TABLE {self.table} ADD CONSTRAINT {self.name} CHECK ({self.expr})"]


@dataclass(frozen=True)
class SetProperty(Step):
    key: str
    value: str
    current: str | None

    @property
    def problem(self) -> str:
        return f"table property {self.key} is {self.current!r}, expected {self.value!r}"

    def statements(self) -> list[str]:
        return [f"ALTER TABLE {self.table} SET TBLPROPERTIES ('{self.key}' = '{sql_quote(self.value)}')"]


@dataclass(frozen=True)
class TablePlan:
    """The steps for one table, and what migrate cannot do (drift it leaves to a person)."""

    table: str
    steps: tuple[Step, ...] = ()
    blockers: tuple[str, ...] = ()

    @property
    def problems(self) -> list[str]:
        return [*self.blockers, *(s.problem for s in self.steps)]


def create_statements(spec: TableSpec, cfg: LakecastConfig) -> tuple[str, ...]:
    """CREATE TABLE of `spec`, its CHECK constraints included (as table properties)."""
    return (create_table_sql(spec, cfg),)


def _norm(expr: str) -> str:
    """A CHECK expression without whitespace: Delta stores it re-spaced (`length ( x ) > 0`)."""
    return "".join(expr.split()).lower()


def _layout(spark: SparkSession, name: str) -> tuple[tuple[str, ...], str, dict[str, str]]:
    """Partition columns, table comment and properties (constraints included) of a Delta table."""
    d = spark.sql(f"DESCRIBE DETAIL {name}").head()  # one snapshot: its properties hold the constraints
    assert d is not None
    return tuple(d["partitionColumns"] or ()), d["description"] or "", dict(d["properties"] or {})


def _column_steps(name: str, spec: TableSpec, actual: dict[str, Any]) -> tuple[list[Step], list[str]]:
    steps: list[Step] = []
    blockers: list[str] = []
    for col in spec.columns:
        f = actual.get(col.name)
        if f is None:
            if col.nullable:
                steps.append(AddColumn(name, col))
            else:
                blockers.append(f"column {col.name} ({col.type} NOT NULL) is missing and existing rows "
                                "have no value for it")
            continue
        got = f.dataType.simpleString().replace(" ", "").lower()
        if got != col.type.replace(" ", "").lower():
            blockers.append(f"column {col.name} has type {got}, expected {col.type.lower()}")
        if not col.nullable and f.nullable:
            steps.append(SetNotNull(name, col.name))
        if f.metadata.get("comment", "") != col.comment:
            steps.append(SetColumnComment(name, col.name, col.comment))
    blockers.extend(f"unexpected column {extra}" for extra in sorted(set(actual) - set(spec.column_names)))
    return steps, blockers


def _metadata_steps(name: str, spec: TableSpec, comment: str, props: dict[str, str]) -> list[Step]:
    steps: list[Step] = []
    if comment != spec.comment:
        steps.append(SetTableComment(name, spec.comment))
    for cname, expr in spec.constraints.items():
        have = props.get(f"delta.constraints.{cname.lower()}")
        if have is None:
            steps.append(AddConstraint(name, cname, expr))
        elif _norm(have) != _norm(expr):
            steps.append(AddConstraint(name, cname, expr, replaces=have))
    steps.extend(SetProperty(name, k, v, props.get(k)) for k, v in spec.properties.items() if props.get(k) != v)
    return steps


def _is_table(spark: SparkSession, name: str) -> bool:
    """A table (not a view) of that name exists."""
    return bool(spark.catalog.tableExists(name)) and spark.catalog.getTable(name).tableType != "VIEW"


def plan_table(spark: SparkSession, spec: TableSpec, cfg: LakecastConfig) -> TablePlan:
    """Compare the table of `spec` in the home with the spec: steps to apply, blockers to report."""
    name = cfg.table(spec.name)
    old = cfg.table(spec.renamed_from) if spec.renamed_from else None
    if not spark.catalog.tableExists(name):
        if old is None or not _is_table(spark, old):
            return TablePlan(name, (CreateTable(name, create_statements(spec, cfg)),))
        # The previous release's table: renamed, then brought to the spec by the steps planned on it.
        on_old = _plan_existing(spark, spec, old)
        return TablePlan(name, (RenameTable(name, old), *(replace(s, table=name) for s in on_old.steps)),
                         tuple(f"in {old}, to be renamed to it: {b}" for b in on_old.blockers))
    plan = _plan_existing(spark, spec, name)
    if old is not None and _is_table(spark, old):
        return replace(plan, blockers=(*plan.blockers, f"{old} is still a table of the previous release beside "
                                       f"it: move its rows into {name} and drop it (a view of that name "
                                       "takes its place)"))
    return plan


def _plan_existing(spark: SparkSession, spec: TableSpec, name: str) -> TablePlan:
    parts, comment, props = _layout(spark, name)
    layout: list[Step] = [Repartition(name, parts, spec.partitioned_by)] if parts != spec.partitioned_by else []
    columns, blockers = _column_steps(name, spec, {f.name: f for f in spark.table(name).schema.fields})
    return TablePlan(name, (*layout, *columns, *_metadata_steps(name, spec, comment, props)), tuple(blockers))
