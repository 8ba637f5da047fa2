"""The tables in docs/quality.md that name their records agree with those records.

A measured table is introduced by a comment naming a log file committed in
docs/records/ and how many items of it the table covers, e.g.
``<!-- records: arc.jsonl, first 100 -->`` (a grouped suite: the first N of
each group). Each row whose first cell names a config in backticks is then
summarized again from that config's records, and its score, seconds and
tokens per item (and any per-group column) must be the ones the table
prints. A number typed by hand, or a table left behind when the records
grew, fails here.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from moa_local.evals.runner import read_log
from moa_local.evals.summary import summarize
from tests.conftest import REPO_ROOT

QUALITY = REPO_ROOT / "docs" / "quality.md"
RECORDS = REPO_ROOT / "docs" / "records"

_MARKER = re.compile(r"^<!-- records: (?P<file>[\w.-]+\.jsonl), first (?P<n>\d+) -->$")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_LABEL = re.compile(r"^`([^`]+)`")


def marked_tables(text: str) -> list[tuple[str, int, list[list[str]]]]:
    """Each (records file, item count, table rows as cells) that a marker introduces."""
    tables = []
    lines = text.splitlines()
    for number, line in enumerate(lines):
        marker = _MARKER.match(line.strip())
        if not marker:
            continue
        rows: list[list[str]] = []
        for row in lines[number + 1 :]:
            if not row.startswith("|"):
                if rows:
                    break
                continue
            rows.append([cell.strip() for cell in row.strip().strip("|").split("|")])
        tables.append((marker["file"], int(marker["n"]), rows))
    return tables


def first_items(records: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """The records of the first ``count`` items (of each group, where there are groups)."""
    by_group: dict[str, list[dict[str, Any]]] = {}
    for record in sorted(records, key=lambda r: r["index"]):
        by_group.setdefault(record.get("group") or "", []).append(record)
    return [record for group in by_group.values() for record in group[:count]]


def first_number(cell: str) -> float:
    match = _NUMBER.search(cell.replace(",", ""))
    assert match, f"no number in the cell {cell!r}"
    return float(match.group())


def check_row(header: list[str], row: list[str], records: list[dict[str, Any]]) -> list[str]:
    """What in one table row differs from the summary of its config's records."""
    label = _LABEL.match(row[0])
    assert label, f"row without a config label: {row}"
    summary = summarize(label[1], "", "", records)
    expected: dict[str, float] = {
        "score": summary.score,
        "s / item": round(summary.seconds_per_item, 1),
        "tokens / item": round(summary.tokens_per_item),
    }
    # A group's column is headed by a word of its name ("zebra" for zebra_puzzles);
    # the columns above and a ratio ("x 1.5B") are never groups.
    group_columns = [c for c in header if c and c not in expected and not c.startswith("x ")]
    for name, group in (summary.groups or {}).items():
        for column in group_columns:
            if column.split()[0] in name:
                expected[column] = group["score"]
    wrong = []
    for column, value in expected.items():
        if column in header:
            printed = first_number(row[header.index(column)])
            if abs(printed - value) > 0.051:
                wrong.append(f"{label[1]} {column}: table {printed}, records {value}")
    return wrong


def test_the_marked_tables_exist() -> None:
    # The stage-3 tables are the measurements: they must stay tied to records.
    files = {file for file, _, _ in marked_tables(QUALITY.read_text(encoding="utf-8"))}
    assert files, "docs/quality.md has no table marked with <!-- records: FILE, first N -->"
    for file in files:
        assert (RECORDS / file).is_file(), f"docs/records/{file} is not committed"


@pytest.mark.parametrize(
    ("file", "count", "rows"),
    [
        pytest.param(file, count, rows, id=f"{file}-first-{count}")
        for file, count, rows in marked_tables(QUALITY.read_text(encoding="utf-8"))
    ],
)
def test_a_marked_table_matches_its_records(file: str, count: int, rows: list[list[str]]) -> None:
    header, body = rows[0], [row for row in rows[2:] if _LABEL.match(row[0])]
    header[0] = ""  # the first header cell names the table, not a column
    log = read_log(RECORDS / file)
    wrong = []
    for row in body:
        label = _LABEL.match(row[0])
        assert label
        mine = [r for r in log if r["config"] == label[1]]
        assert len({r["fingerprint"] for r in mine}) == 1, (
            f"docs/records/{file} holds {label[1]} under several fingerprints; "
            "keep the records of the measured one only"
        )
        chosen = first_items(mine, count)
        # One record per item: a grouped suite numbers each group's items from 0.
        assert len({r["id"] for r in chosen}) == len(chosen)
        per_group = len({r.get("group") for r in chosen}) or 1
        assert len(chosen) == count * per_group, (
            f"{label[1]} has {len(chosen)} records in docs/records/{file}, the table says "
            f"first {count}"
        )
        wrong += check_row(header, row, chosen)
    assert not wrong, "docs/quality.md disagrees with its records:\n" + "\n".join(wrong)


def test_first_items_takes_the_first_of_each_group() -> None:
    records = [
        {"index": 3, "group": "a"},
        {"index": 0, "group": "a"},
        {"index": 1, "group": "b"},
        {"index": 7, "group": "b"},
        {"index": 9, "group": "a"},
    ]
    assert [r["index"] for r in first_items(records, 2)] == [0, 3, 1, 7]
    assert [r["index"] for r in first_items([{"index": 2}, {"index": 1}], 1)] == [1]


def test_a_table_typed_by_hand_is_caught() -> None:
    records = [
        {"id": "a", "outcome": "pass", "score": 1.0, "seconds": 10.0, "completion_tokens": 100},
        {"id": "b", "outcome": "wrong", "score": 0.0, "seconds": 20.0, "completion_tokens": 300},
    ]
    header = ["", "score", "s / item", "tokens / item"]
    assert check_row(header, ["`moa`", "**50.0**", "15.0 (2x)", "200"], records) == []
    wrong = check_row(header, ["`moa`", "**55.0**", "15.0", "200"], records)
    assert wrong == ["moa score: table 55.0, records 50.0"]


def test_the_marker_reads_its_table() -> None:
    text = (
        "intro\n<!-- records: x.jsonl, first 5 -->\n\n"
        "| t | score |\n|---|---|\n| `a` | 1 |\n\nafter"
    )
    assert marked_tables(text) == [("x.jsonl", 5, [["t", "score"], ["---", "---"], ["`a`", "1"]])]


def test_a_group_column_is_checked_and_the_cost_columns_are_never_groups() -> None:
    def record(group: str, score: float) -> dict[str, Any]:
        made = {"outcome": "pass" if score else "wrong", "score": score}
        return {"id": f"{group}/0", "group": group, "seconds": 4.0, **made}

    # "s" is in both group names: "s / item" must still be read as seconds.
    records = [record("zebra_puzzles", 1.0), record("leg_counting", 0.0)]
    header = ["", "score", "zebra", "leg", "s / item", "x 1.5B"]
    assert check_row(header, ["`moa`", "50.0", "100.0", "0.0", "4.0", "2.0"], records) == []
    wrong = check_row(header, ["`moa`", "50.0", "0.0", "0.0", "4.0", "2.0"], records)
    assert wrong == ["moa zebra: table 0.0, records 100.0"]
