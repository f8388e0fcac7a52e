"""Ingest on real Spark and Delta: validation rules, accounting, exactly-once, fatal sources."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conf import LakecastConfig
from conf.errors import SourceError
from conf.freq import parse_freq
from pipelines.flows import ingest
from pipelines.ingest.account import count_outcomes
from pipelines.ingest.read import ColumnNames, read_source
from pipelines.ingest.validate import REASONS, IngestRules, validate
from pipelines.tables.ensure import delta_version
from tests.conftest import collect_utc

NOW = datetime(2024, 6, 1, tzinfo=UTC)
HEADER = "series_id,ts,value,note"

# One crafted row per quarantine reason (the note names the reason the row must get),
# plus good rows that must be accepted and one exact duplicate.
MIXED = """\
s1,2024-01-01T00:00:00Z,1.5,ok
s1,2024-01-01 01:00:00,2,ok
s1,2024-01-01T03:00:00+01:00,2.5,ok
s1,2024-01-01T03:00:00Z,3,ok
s1,2024-01-01T03:00:00Z,3.0,exact_duplicate
 ,2024-01-01T04:00:00Z,4,missing_series_id
s2,,4,missing_timestamp
s2,2024-13-45 99:00,4,bad_timestamp
s2,2024-01-01T05:00:00Z,,missing_value
s2,2024-01-01T06:00:00Z,four,bad_value
s2,2024-01-01T07:00:00Z,NaN,non_finite_value
s2,2024-01-01T08:00:00Z,-Infinity,non_finite_value
s2,2024-01-01T09:30:00Z,5,off_grid
s2,2024-06-03T00:00:00Z,5,future_timestamp
s3,2024-01-01T00:00:00Z,1,conflicting_duplicate
s3,2024-01-01T00:00:00Z,2,conflicting_duplicate
s4,2024-01-01T00:00:00Z,1,malformed_row,5
"""


# The raw frame `read_source` returns (RAW_COLUMNS), for rows written by hand.
RAW_SCHEMA = "series_raw string, ts_raw string, value_raw string, raw string, source_file string, malformed string"


def _csv(path: Path, body: str, header: str = HEADER) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n" + body)
    return path


def _rules(**kw: Any) -> IngestRules:
    return IngestRules(freq=parse_freq(kw.pop("freq", "h")), **kw)


def _observations(spark: Any, cfg: LakecastConfig) -> list[tuple[Any, ...]]:
    rows = spark.table(cfg.table("observations")).orderBy("series_id", "ts").collect()
    return [tuple(r) for r in rows]


def _version(spark: Any, cfg: LakecastConfig, table: str) -> int:
    return delta_version(spark, cfg.table(table))


@pytest.fixture(scope="module")
def classified_mixed(spark: Any, tmp_path_factory: pytest.TempPathFactory, cfg: LakecastConfig,
                     ) -> list[dict[str, Any]]:
    path = _csv(tmp_path_factory.mktemp("mixed") / "mixed.csv", MIXED)
    raw = read_source(spark, str(path), ColumnNames("series_id", "ts", "value"), cfg)
    out = validate(raw, _rules(), now=NOW)
    # the source's text is kept for quarantined rows only (what the quarantine table stores)
    # a malformed row's raw text is its line as it was (no JSON: its fields do not match the header)
    return [r.asDict() | {"note": None if not r["raw"] else json.loads(r["raw"])["note"] if r["raw"].startswith("{")
                          else r["raw"].split(",")[3]} for r in collect_utc(out)]


@pytest.mark.tz
@pytest.mark.parametrize("reason", sorted(REASONS))
def test_each_reason_quarantines_its_crafted_row(classified_mixed: list[dict[str, Any]], reason: str) -> None:
    crafted = [r for r in classified_mixed if r["note"] == reason]
    assert crafted, f"no crafted row for {reason}"
    assert {(r["status"], r["reason_code"]) for r in crafted} == {("quarantined", reason)}
    assert all(r["reason"] and r["raw"].startswith("{" if reason != "malformed_row" else "s4,") for r in crafted)
    # No other row carries this reason.
    assert sum(r["reason_code"] == reason for r in classified_mixed) == len(crafted)


@pytest.mark.tz
def test_good_rows_are_parsed_to_utc_and_exact_duplicates_collapse(
        classified_mixed: list[dict[str, Any]]) -> None:
    ok = sorted((r["series_id"], r["ts"], r["value"]) for r in classified_mixed if r["status"] == "valid")
    assert ok == [
        ("s1", datetime(2024, 1, 1, 0), 1.5),
        ("s1", datetime(2024, 1, 1, 1), 2.0),
        ("s1", datetime(2024, 1, 1, 2), 2.5),  # 03:00+01:00
        ("s1", datetime(2024, 1, 1, 3), 3.0),
    ]
    dups = [r for r in classified_mixed if r["status"] == "duplicate"]
    assert len(dups) == 1 and dups[0]["series_id"] == "s1" and dups[0]["reason_code"] is None
    kept = [r for r in classified_mixed if r["status"] != "quarantined"]
    assert len(kept) == 5 and all(r[c] is None for r in kept for c in ("raw", "series_raw", "ts_raw", "value_raw"))


@pytest.mark.tz
def test_reasons_are_readable(classified_mixed: list[dict[str, Any]]) -> None:
    by_note = {r["note"]: r["reason"] for r in classified_mixed}
    assert by_note["bad_value"] == "value 'four' in column 'value' is not a number"
    assert "2024-01-01T09:30:00Z (UTC) is not on the 'h' grid" in by_note["off_grid"]
    assert "series 's3' has 2 different rows at 2024-01-01T00:00:00Z" in by_note["conflicting_duplicate"]
    assert "2024-06-02T00:00:00Z" in by_note["future_timestamp"]  # NOW + data.max_future (1D)
    assert "quote a value that holds the delimiter (a decimal comma?)" in by_note["malformed_row"]


@pytest.mark.tz
def test_accounting_identity_on_a_mixed_file(spark: Any, fresh_db: Callable[..., LakecastConfig],
                                             tmp_path: Path) -> None:
    cfg = fresh_db()
    path = _csv(tmp_path / "mixed.csv", MIXED)
    result = ingest.run(spark, cfg, str(path), now=NOW)
    c = result.counts
    assert (c.read, c.inserted, c.updated, c.unchanged, c.duplicates, c.quarantined) == (17, 4, 0, 0, 1, 12)
    assert c.read == c.inserted + c.updated + c.unchanged + c.duplicates + c.quarantined
    assert c.quarantined_by_reason == {
        "missing_series_id": 1, "missing_timestamp": 1, "bad_timestamp": 1, "missing_value": 1,
        "bad_value": 1, "non_finite_value": 2, "off_grid": 1, "future_timestamp": 1,
        "conflicting_duplicate": 2, "malformed_row": 1,
    }
    run = spark.sql(f"SELECT * FROM {cfg.table('job_runs')} WHERE run_id = '{result.batch_id}'").head()
    assert run["status"] == "succeeded"
    assert run["row_counts"]["read"] == 17 and run["row_counts"]["quarantined.non_finite_value"] == 2
    assert run["versions_written"] == {"observations": result.observations_version,
                                       "quarantine": result.quarantine_version}
    q = spark.table(cfg.table("quarantine")).filter(f"batch_id = '{result.batch_id}'")
    assert q.count() == 12
    assert q.filter("reason_code = 'bad_value'").head()["value_raw"] == "four"
    # `now` stamps the batch as that instant, whatever the host's zone
    stamps = {r["quarantined_at"] for r in collect_utc(q)}
    obs = collect_utc(spark.table(cfg.table("observations")).orderBy("ts"))
    stamps |= {r["ingested_at"] for r in obs} | {r["updated_at"] for r in obs}
    assert stamps == {NOW.replace(tzinfo=None)}
    assert [r["ts"] for r in obs] == [datetime(2024, 1, 1, h) for h in range(4)]


def test_reingest_is_idempotent_and_a_corrected_value_updates(
        spark: Any, fresh_db: Callable[..., LakecastConfig], tmp_path: Path) -> None:
    cfg = fresh_db()
    first = _csv(tmp_path / "a.csv", "s1,2024-01-01T00:00:00Z,1,x\ns1,2024-01-01T01:00:00Z,2,x\n"
                                     "s1,2024-01-01T02:00:00Z,two,bad\ns1,2024-01-01T02:00:00Z,two,bad\n")
    r1 = ingest.run(spark, cfg, str(first), now=NOW)
    assert (r1.counts.quarantined, r1.counts.already_quarantined) == (2, 0)
    before = _observations(spark, cfg)
    quarantined = spark.table(cfg.table("quarantine")).count()
    r2 = ingest.run(spark, cfg, str(first), now=NOW + timedelta(hours=1))
    assert r2.observations_version > r1.observations_version
    assert (r2.counts.inserted, r2.counts.updated, r2.counts.unchanged) == (0, 0, 2)
    assert _observations(spark, cfg) == before  # same content, batch ids and times included
    # the rejected rows are accounted for again, but not appended again (the same file, reason and row)
    assert (r2.counts.quarantined, r2.counts.already_quarantined, r2.quarantine_version) == (2, 2, None)
    assert spark.table(cfg.table("quarantine")).count() == quarantined == 2
    assert r2.summary()["  already in quarantine (not appended again)"] == 2

    late = NOW + timedelta(hours=2)
    fix = _csv(tmp_path / "fix.csv", "s1,2024-01-01T01:00:00Z,20,x\ns1,2023-12-31T23:00:00Z,0,late\n")
    r3 = ingest.run(spark, cfg, str(fix), now=late)
    assert (r3.counts.inserted, r3.counts.updated, r3.counts.unchanged) == (1, 1, 0)
    rows = {r["ts"]: r for r in spark.table(cfg.table("observations")).collect()}
    fixed = rows[datetime(2024, 1, 1, 1)]
    assert fixed["value"] == 20.0 and fixed["batch_id"] == r3.batch_id
    assert fixed["ingested_at"] == before[1][5] and fixed["updated_at"] == late.replace(tzinfo=None)
    assert rows[datetime(2023, 12, 31, 23)]["value"] == 0.0  # late data for an old timestamp


def test_fatal_schema_leaves_tables_untouched(spark: Any, fresh_db: Callable[..., LakecastConfig],
                                              tmp_path: Path) -> None:
    cfg = fresh_db()
    versions = (_version(spark, cfg, "observations"), _version(spark, cfg, "quarantine"))
    bad = _csv(tmp_path / "bad.csv", "s1,2024-01-01T00:00:00Z,1\n", header="id,time,amount")
    with pytest.raises(SourceError, match=r"bad\.csv: required column\(s\) series_id, ts, value not found; "
                       r"it has columns id, time, amount"):
        ingest.run(spark, cfg, str(bad), now=NOW)
    assert (_version(spark, cfg, "observations"), _version(spark, cfg, "quarantine")) == versions
    failed = spark.sql(f"SELECT status, error FROM {cfg.table('job_runs')} WHERE status = 'failed'").collect()
    assert len(failed) == 1 and "SourceError" in failed[0]["error"]


def test_whole_file_unusable_is_fatal(spark: Any, fresh_db: Callable[..., LakecastConfig],
                                      tmp_path: Path) -> None:
    cfg = fresh_db()
    path = _csv(tmp_path / "dates.csv", "s1,31/01/2024 13:00,1,x\ns1,31/01/2024 14:00,2,x\n")
    with pytest.raises(SourceError, match=r"dates\.csv: all 2 rows fail with bad_timestamp \(e\.g\. "
                       r"'31/01/2024 13:00'\).*ingest\.timestamp_format"):
        ingest.run(spark, cfg, str(path), now=NOW)
    assert _version(spark, cfg, "observations") == 0
    # The hint works: with the pattern the same file validates.
    rules = _rules(timestamp_format="dd/MM/yyyy HH:mm")
    raw = read_source(spark, str(path), ColumnNames("series_id", "ts", "value"), cfg)
    assert count_outcomes(validate(raw, rules, now=NOW), str(path), rules).valid == 2


@pytest.mark.parametrize(("name", "content", "message"), [
    ("data.json", '{"a": 1}', r"data\.json is not CSV or Parquet"),
    ("empty.csv", "", r"every file is empty"),
    ("header_only.csv", HEADER + "\n", r"has no data rows; it is an empty source"),
    ("fake.parquet", HEADER + "\n", r"fake\.parquet is not a Parquet file"),
])
def test_unusable_sources_fail_before_writing(spark: Any, cfg: LakecastConfig, tmp_path: Path, name: str,
                                              content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(SourceError, match=message):
        raw = read_source(spark, str(path), ColumnNames("series_id", "ts", "value"), cfg)
        count_outcomes(validate(raw, _rules(), now=NOW), str(path), _rules())
    with pytest.raises(SourceError, match=r"no such file or folder"):
        read_source(spark, str(tmp_path / "missing*.csv"), ColumnNames("series_id", "ts", "value"), cfg)


def test_parquet_folder_and_csv_glob_sources(spark: Any, fresh_db: Callable[..., LakecastConfig],
                                             tmp_path: Path) -> None:
    cfg = fresh_db()
    folder = tmp_path / "pq"
    folder.mkdir()
    ts = pa.array([datetime(2024, 1, 1, h, tzinfo=UTC) for h in range(3)], pa.timestamp("us", tz="UTC"))
    table = pa.table({"sid": ["p1"] * 3, "when": ts, "amount": pa.array([1.0, float("nan"), 3.0])})
    pq.write_table(table, folder / "part-0.parquet")
    (folder / "_SUCCESS").write_text("")
    r = ingest.run(spark, cfg, str(folder), series_col="sid", time_col="when", value_col="amount", now=NOW)
    assert (r.counts.read, r.counts.inserted) == (3, 2)
    assert r.counts.quarantined_by_reason == {"non_finite_value": 1}
    for i in range(2):
        _csv(tmp_path / "csv" / f"day{i}.csv", f"c1,2024-01-0{i + 1}T00:00:00Z,{i},x\n")
    r = ingest.run(spark, cfg, str(tmp_path / "csv" / "day*.csv"), now=NOW)
    assert r.counts.inserted == 2
    sources = {row["source_file"] for row in spark.table(cfg.table("observations")).collect()}
    assert any(s.endswith("part-0.parquet") for s in sources) and any(s.endswith("day1.csv") for s in sources)


def test_delta_table_source(spark: Any, fresh_db: Callable[..., LakecastConfig], tmp_path: Path) -> None:
    cfg = fresh_db()
    src = str(tmp_path / "delta_src")
    schema = "series_id string, ts timestamp, value double"
    df = spark.createDataFrame([("d1", datetime(2024, 1, 1), 1.0)], schema)
    df.write.format("delta").save(src)
    r = ingest.run(spark, cfg, src, now=NOW)
    assert r.counts.inserted == 1
    assert spark.table(cfg.table("observations")).head()["source_file"] == src


def test_relative_sources_are_read_from_the_working_directory(
        spark: Any, fresh_db: Callable[..., LakecastConfig], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The JVM's own working directory is the home: a relative path must not be resolved there."""
    cfg = fresh_db()
    monkeypatch.chdir(tmp_path)
    _csv(tmp_path / "raw" / "a.csv", "r1,2024-01-01T00:00:00Z,1,x\nr1,2024-01-01T01:00:00Z,2,x\n")
    assert ingest.run(spark, cfg, "raw", now=NOW).counts.inserted == 2
    spark.createDataFrame([("r2", datetime(2024, 1, 1, tzinfo=UTC), 5.0)],
                          "series_id string, ts timestamp, value double").write.format("delta").save(
        str(tmp_path / "rel_delta"))
    assert ingest.run(spark, cfg, "rel_delta", now=NOW).counts.inserted == 1


@pytest.mark.tz
def test_naive_timestamps_are_read_in_the_configured_timezone(spark: Any) -> None:
    raw = spark.createDataFrame(
        [(f"s{i}", t, "1", "{}", "f", None) for i, t in enumerate((
            "2024-01-15 10:00:00", "2024-07-15 10:00", "2024-07-15T10:00:00Z", "2024-07-15T10:00:00-04:00",
            "2024-01-15 10:00:00 EST", "2024-07-15T10:00:00-4:00", "2024-07-15T10:00:00 UTC"))],
        RAW_SCHEMA)
    rows = sorted(collect_utc(validate(raw, _rules(timezone="Europe/Berlin"), now=NOW)), key=lambda r: r["series_id"])
    assert [r["ts"] for r in rows] == [
        datetime(2024, 1, 15, 9), datetime(2024, 7, 15, 8),  # CET (+1) and CEST (+2) wall clock
        datetime(2024, 7, 15, 10), datetime(2024, 7, 15, 14),  # explicit zones are kept
        datetime(2024, 1, 15, 15), datetime(2024, 7, 15, 14),  # a short zone id, a one-digit offset hour
        datetime(2024, 7, 15, 10),
    ]


@pytest.mark.tz
def test_am_and_pm_are_not_zones(spark: Any) -> None:
    """A 12-hour clock's AM/PM after the time is not a zone id: the text stays naive, read in data.timezone."""
    raw = spark.createDataFrame([("s", "01/15/2024 10:00 PM", "1", "{}", "f", None)], RAW_SCHEMA)
    rules = _rules(timezone="Europe/Berlin", timestamp_format="MM/dd/yyyy hh:mm a")
    assert [r["ts"] for r in collect_utc(validate(raw, rules, now=NOW))] == [datetime(2024, 1, 15, 21)]


@pytest.mark.tz
def test_a_time_without_a_date_is_a_bad_timestamp_not_today(spark: Any) -> None:
    """Spark would give '13:00' the date of the run: the same file ingested tomorrow would add new rows."""
    raw = spark.createDataFrame([(f"s{i}", t, "1", "{}", "f", None) for i, t in enumerate(
        ("13:00", "T13:00:00", "13:00:00Z", "2024-03", "2024-01-01 13:00"))], RAW_SCHEMA)
    rows = sorted(collect_utc(validate(raw, _rules(freq="h"), now=NOW)), key=lambda r: r["series_id"])
    assert [r["reason_code"] for r in rows] == ["bad_timestamp"] * 3 + [None, None]
    assert [r["ts"] for r in rows[3:]] == [datetime(2024, 3, 1), datetime(2024, 1, 1, 13)]


def test_csv_files_are_read_by_their_own_headers(spark: Any, fresh_db: Callable[..., LakecastConfig],
                                                  tmp_path: Path) -> None:
    """Spark applies the first file's header to every file by position: a folder whose files order
    their columns differently would store one file's `temp` as the value."""
    cfg = fresh_db()
    folder = tmp_path / "mixed_headers"
    _csv(folder / "a.csv", "h1,2024-01-01T00:00:00Z,1,-5\nh1,2024-01-01T06:00:00Z\n",  # a line short of a field
         header="series_id,ts,value,temp")
    _csv(folder / "b.csv", "h1,2024-01-01T01:00:00Z,-6,2\n", header="series_id,ts,temp,value")
    _csv(folder / "c.csv", "0,h1,2024-01-01T02:00:00Z,3\n", header=",series_id,ts,value")  # pandas' index
    with gzip.open(folder / "d.csv.gz", "wt") as fh:
        fh.write("value,ts,series_id\n4,2024-01-01T03:00:00Z,h1\n")
    (folder / "e.csv").write_text("")  # empty: no rows, no header
    with gzip.open(folder / "e2.csv.gz", "wt") as fh:  # empty inside, not on disk
        fh.write("")
    (folder / "g.csv").write_text("\n\nseries_id,ts,value\nh1,2024-01-01T04:00:00Z,5\n")  # blank lines first
    r = ingest.run(spark, cfg, str(folder), now=NOW)
    assert (r.counts.read, r.counts.inserted, r.counts.quarantined_by_reason) == (6, 5, {"malformed_row": 1})
    assert [row["value"] for row in spark.table(cfg.table("observations")).orderBy("ts").collect()] == [1, 2, 3, 4, 5]
    _csv(folder / "f.csv", "h1,2024-01-01T04:00:00Z,5\n", header="id,ts,value")
    with pytest.raises(SourceError, match=r"f\.csv, a header of its own\): required column\(s\) series_id not found"):
        ingest.run(spark, cfg, str(folder), now=NOW)


@pytest.mark.parametrize(("freq", "ok", "off"), [
    ("MS", ["2024-02-01", "2023-12-01T00:00:00Z"], ["2024-02-15", "2024-02-01T01:00:00Z", "2024-01-31"]),
    ("QS", ["2024-04-01", "2023-10-01"], ["2024-02-01", "2024-04-02"]),
    ("W", ["2024-01-07", "2024-01-14T00:00:00Z"], ["2024-01-08", "2024-01-07T12:00:00Z"]),
    ("W-MON", ["2024-01-08", "2024-01-15"], ["2024-01-07", "2024-01-08T12:00:00Z"]),
    ("YS", ["2024-01-01", "1999-01-01"], ["2024-02-01", "2023-12-31"]),
    ("ME", ["2024-01-31", "2024-02-29", "2023-02-28"], ["2024-02-28", "2024-02-01", "2024-01-31T01:00:00Z"]),
    ("QE", ["2024-03-31", "2023-12-31"], ["2024-01-31", "2024-04-01", "2024-06-29"]),
    ("YE", ["2023-12-31"], ["2023-01-01", "2023-11-30"]),
    ("15min", ["2024-01-01T00:45:00Z"], ["2024-01-01T00:50:00Z", "2024-01-01T00:45:01Z"]),
])
def test_frequency_grid(spark: Any, freq: str, ok: list[str], off: list[str]) -> None:
    raw = spark.createDataFrame(
        [(f"s{i}", t, "1", "{}", "f", None) for i, t in enumerate(ok + off)],
        RAW_SCHEMA)
    stamps = ok + off  # series s{i} holds stamps[i]
    classified = validate(raw, _rules(freq=freq), now=NOW).collect()
    rows = {stamps[int(r["series_id"][1:])]: r["reason_code"] for r in classified}
    assert rows == {**dict.fromkeys(ok), **dict.fromkeys(off, "off_grid")}


def test_cli_ingest_prints_the_summary(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    path = _csv(tmp_path / "cli.csv", "s1,2024-01-01T00:00:00Z,1,x\ns1,2024-01-01T00:00:00Z,2,y\n"
                "s2,2024-01-01T00:00:00Z,1,x\ns2,2024-01-02T13:00:00Z,1,after as-of + 1 day\n")
    # --as-of is the scheduler's logical date: the future check is against it, not the wall clock
    proc = run_cli(tmp_path / "home", "ingest", str(path), "--freq", "h", "--as-of", "2024-01-01T12:00:00")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    for fact in ("rows read", "accepted (new)", "conflicting_duplicate", "observations version"):
        assert fact in out
    assert out.split("rows read")[1].split()[1] == "4"
    assert out.split("future_timestamp")[1].split()[1] == "1"
    assert out.split("accepted (new)")[1].split()[1] == "1"


def test_accounting_error_when_counts_do_not_add_up() -> None:
    from conf.errors import AccountingError
    from pipelines.ingest.account import IngestCounts

    ok = IngestCounts(read=5, valid=3, duplicates=1, quarantined_by_reason={"bad_value": 1},
                      inserted=2, updated=1, unchanged=0, quarantine_written=1)
    ok.check()
    assert ok.row_counts() == {"read": 5, "inserted": 2, "updated": 1, "unchanged": 0, "duplicates": 1,
                               "quarantined": 1, "quarantined.bad_value": 1}
    with pytest.raises(AccountingError, match=r"read 6 != valid 3 \+ duplicates 1 \+ quarantined 1"):
        IngestCounts(read=6, valid=3, duplicates=1, quarantined_by_reason={"bad_value": 1}
                     ).check(merged=False)
    # Delta's MERGE read one valid row fewer than were counted: the identity names every count
    with pytest.raises(AccountingError, match=r"read 5 != inserted 2 \+ updated 0 \+ unchanged 0 \+ "
                       r"duplicates 1 \+ quarantined 1 \(Delta's metrics of the writes; 3 rows were valid"):
        IngestCounts(read=5, valid=3, duplicates=1, quarantined_by_reason={"bad_value": 1},
                     inserted=2, quarantine_written=1).check()
    # the quarantine append wrote no row of the one quarantined
    with pytest.raises(AccountingError, match=r"\+ quarantined 0 \(Delta's metrics.*and 1 quarantined"):
        IngestCounts(read=5, valid=3, duplicates=1, quarantined_by_reason={"bad_value": 1},
                     inserted=3).check()


def test_counts_are_deltas_own_merge_metrics(spark: Any, fresh_db: Callable[..., LakecastConfig],
                                            tmp_path: Path) -> None:
    """inserted, updated, unchanged and quarantined come from the commits tagged with the run id."""
    cfg = fresh_db()
    first = _csv(tmp_path / "a.csv", "s1,2024-01-01T00:00:00Z,1,x\ns1,2024-01-01T01:00:00Z,2,x\n"
                 "s1,2024-01-01T02:00:00Z,3,x\n")
    ingest.run(spark, cfg, str(first), now=NOW)
    second = _csv(tmp_path / "b.csv", "s1,2024-01-01T00:00:00Z,1,unchanged\ns1,2024-01-01T01:00:00Z,2.0,unchanged\n"
                  "s1,2024-01-01T02:00:00Z,30,updated\ns1,2024-01-01T03:00:00Z,4,new\n"
                  "s2,2024-01-01T00:00:00Z,5,new\ns2,2024-01-01T00:00:00Z,5,duplicate\n"
                  "s2,2024-01-01T01:00:00Z,five,bad_value\n")
    r = ingest.run(spark, cfg, str(second), now=NOW + timedelta(hours=1))
    c = r.counts
    assert (c.read, c.inserted, c.updated, c.unchanged, c.duplicates, c.quarantined) == (7, 2, 1, 2, 1, 1)

    def commit(table: str, version: int | None) -> Any:
        return spark.sql(f"DESCRIBE HISTORY {cfg.table(table)}").filter(f"version = {version}").head()

    merge = commit("observations", r.observations_version)
    assert (merge.operation, merge.userMetadata) == ("MERGE", r.batch_id)
    m = {k: int(v) for k, v in merge.operationMetrics.items()}
    assert (m["numSourceRows"], m["numTargetRowsInserted"], m["numTargetRowsUpdated"]) == (5, 2, 1)
    appended = commit("quarantine", r.quarantine_version)
    assert (appended.userMetadata, appended.operationMetrics["numOutputRows"]) == (r.batch_id, "1")
    run = spark.sql(f"SELECT * FROM {cfg.table('job_runs')} WHERE run_id = '{r.batch_id}'").head()
    assert run.row_counts == {"read": 7, "inserted": 2, "updated": 1, "unchanged": 2, "duplicates": 1,
                              "quarantined": 1, "quarantined.bad_value": 1}
    assert run.versions_written == {"observations": r.observations_version, "quarantine": r.quarantine_version}


def test_the_version_written_is_found_by_run_id_after_other_commits(
        spark: Any, fresh_db: Callable[..., LakecastConfig]) -> None:
    from conf.errors import LineageError
    from pipelines.tables.commits import USER_METADATA, commit_of_run, commits_tagged

    cfg = fresh_db()
    table = cfg.table("quarantine")
    row = "('b', 'f', 'bad_value', 'r', 's', 't', 'v', '{}', timestamp'2024-01-01 00:00:00')"
    with commits_tagged(spark, "ingest-ours"):
        spark.sql(f"INSERT INTO {table} VALUES {row}, {row}")
    assert spark.conf.get(USER_METADATA, None) is None  # unset again: other commits are not tagged
    ours = delta_version(spark, table)
    spark.sql(f"INSERT INTO {table} VALUES {row}")  # another job commits before the lookup
    assert delta_version(spark, table) == ours + 1
    for first_look in (1, 8):  # 1: the lookup reads further back than the latest commit
        found = commit_of_run(spark, table, "ingest-ours", first_look=first_look)
        assert (found.version, found.operation, found.metric("numOutputRows")) == (ours, "WRITE", 2)
    tags = {h.version: h.userMetadata for h in spark.sql(f"DESCRIBE HISTORY {table}").collect()}
    assert tags[ours] == "ingest-ours" and tags[ours + 1] is None
    with pytest.raises(LineageError, match=r"no commit of \S+quarantine carries run id 'ingest-nobody'"):
        commit_of_run(spark, table, "ingest-nobody", first_look=1)


def test_a_first_load_inserts_only_and_a_load_that_lost_the_race_merges_the_rest(
        spark: Any, fresh_db: Callable[..., LakecastConfig]) -> None:
    """Into an empty observations an insert-only MERGE (one pass) is enough. If another ingest
    committed between the emptiness check and that MERGE, its keys are skipped there and the keyed
    MERGE then updates what differs: no value lost, counts over both commits."""
    from pipelines.sinks.observations import merge_observations

    cfg = fresh_db()
    table = cfg.table("observations")

    def rows(*vals: tuple[int, float]) -> Any:
        return spark.createDataFrame(
            [("s1", datetime(2024, 1, 1, h, tzinfo=UTC), v, "f.csv") for h, v in vals],
            "series_id string, ts timestamp, value double, source_file string")

    def history(run_id: str) -> list[Any]:
        return spark.sql(f"DESCRIBE HISTORY {table}").where(f"userMetadata = '{run_id}'").orderBy("version").collect()

    first = merge_observations(spark, cfg, rows((0, 1.0), (1, 2.0), (2, 3.0)), run_id="load-1", batch_id="b1", now=NOW)
    assert (first.source_rows, first.inserted, first.updated, first.unchanged) == (3, 3, 0, 0)
    (commit,) = history("load-1")
    assert commit.operationParameters["matchedPredicates"] == "[]"  # insert-only: no matched clause
    # as if the table had been empty when checked: the insert-only pass skips t0 and t1 ...
    raced = merge_observations(spark, cfg, rows((0, 1.0), (1, 20.0), (3, 4.0)), run_id="load-2", batch_id="b2",
                               now=NOW, insert_first=True)
    # ... inserts t3, and the keyed MERGE updates t1 (t0 equal; t3 now its own row): nothing lost
    assert (raced.source_rows, raced.inserted, raced.updated, raced.unchanged) == (3, 1, 1, 1)
    passes = history("load-2")
    assert [c.operationParameters["matchedPredicates"] == "[]" for c in passes] == [True, False]
    assert raced.versions == tuple(c.version for c in passes) and raced.version == passes[-1].version
    got = {r["ts"].hour: r["value"] for r in collect_utc(spark.table(table))}
    assert got == {0: 1.0, 1: 20.0, 2: 3.0, 3: 4.0} and spark.table(table).count() == 4
    # every key lost the race: the insert-only pass has nothing to commit, the keyed MERGE does it all
    lost = merge_observations(spark, cfg, rows((0, 10.0), (3, 4.0)), run_id="load-4", batch_id="b4",
                              now=NOW, insert_first=True)
    assert (lost.inserted, lost.updated, lost.unchanged) == (0, 1, 1) and lost.versions == (lost.version,)
    assert [c.version for c in history("load-4")] == [lost.version]
    # not empty any more: the keyed MERGE alone
    again = merge_observations(spark, cfg, rows((2, 30.0)), run_id="load-3", batch_id="b3", now=NOW)
    assert (again.inserted, again.updated) == (0, 1) and len(history("load-3")) == 1 and len(again.versions) == 1


def test_a_batch_with_no_valid_row_quarantines_and_writes_no_observation(
        spark: Any, fresh_db: Callable[..., LakecastConfig], tmp_path: Path) -> None:
    """Only rows that cannot be used (future stamps are not a fatal pattern) and nothing valid:
    the quarantine gets them, observations are not touched (Delta would commit nothing for an
    empty MERGE), and the run succeeds with every row accounted for."""
    cfg = fresh_db()
    path = _csv(tmp_path / "future.csv", "s1,2030-01-01T00:00:00Z,1,x\ns1,2030-01-01T01:00:00Z,2,x\n")
    r = ingest.run(spark, cfg, str(path), now=NOW)
    c = r.counts
    assert (c.read, c.inserted, c.updated, c.unchanged, c.quarantined) == (2, 0, 0, 0, 2)
    assert r.observations_version is None and r.summary()["observations version"] == "unchanged"
    assert r.quarantine_version is not None and _version(spark, cfg, "observations") == 0
    run = spark.sql(f"SELECT * FROM {cfg.table('job_runs')} WHERE run_id = '{r.batch_id}'").head()
    assert run.status == "succeeded" and run.versions_written == {"quarantine": r.quarantine_version}
