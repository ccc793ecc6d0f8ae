"""docs/security.md and the tests must not drift apart: the document's case tables (``| id | what
holds | tests |``) name the tests that prove each catalogue case, and the tests name the case ids
they cover (as ``X-NN`` in text, or ``_XNN`` in a test's name).

- every case id any test names has a row in docs/security.md;
- every test path the document names exists (and every ``path::function`` names a test in it);
- each test file a row names does name that row's id.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "security.md"
TESTS = ROOT / "tests"
THIS = Path(__file__).resolve()

CASE = re.compile(r"\b([A-Q])-(\d{2})\b")
# A test named for its case, e.g. test_C13a_... or test_N01_N02_...: the letter and two digits.
CASE_IN_NAME = re.compile(r"_([A-Q])(\d{2})(?=[a-z]?_)")
TEST_NAME = re.compile(r"^\s*(?:async\s+)?def\s+(test\w*)", re.MULTILINE)
PATH = re.compile(r"tests/[\w/]+\.py")
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)(?:::(\w+))?`")
HEADER = re.compile(r"^\|\s*id\s*\|\s*what holds\s*\|\s*tests\s*\|\s*$")


def ids_named_in(text: str) -> set[str]:
    named = {f"{letter}-{digits}" for letter, digits in CASE.findall(text)}
    for name in TEST_NAME.findall(text):
        named |= {f"{letter}-{digits}" for letter, digits in CASE_IN_NAME.findall(name)}
    return named


def read_tests() -> dict[Path, str]:
    return {path: path.read_text(encoding="utf-8") for path in sorted(TESTS.rglob("*.py")) if path != THIS}


def rows() -> list[tuple[str, str]]:
    """(id, tests cell) of every row of the document's case tables."""
    found = []
    in_table = False
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if HEADER.match(line):
            in_table = True
            continue
        if not line.startswith("|"):
            in_table = False
            continue
        if not in_table or set(line) <= set("|-: "):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        assert len(cells) == 3, f"a case row has three cells: {line}"
        assert CASE.fullmatch(cells[0]), f"the first cell of a case row is one id: {line}"
        found.append((cells[0], cells[2]))
    return found


def test_the_tables_have_one_row_per_id() -> None:
    ids = [case for case, _ in rows()]
    assert len(ids) > 100, "the case tables were not found (header changed?)"
    assert len(ids) == len(set(ids)), sorted({case for case in ids if ids.count(case) > 1})


def test_every_id_a_test_names_is_in_the_document() -> None:
    documented = {case for case, _ in rows()}
    named: dict[str, list[str]] = {}
    for path, text in read_tests().items():
        for case in ids_named_in(text):
            named.setdefault(case, []).append(str(path.relative_to(ROOT)))
    missing = {case: files for case, files in sorted(named.items()) if case not in documented}
    assert missing == {}, f"ids named by tests but absent from docs/security.md: {missing}"


def test_every_test_path_in_the_document_exists() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = sorted({path for path in PATH.findall(text) if not (ROOT / path).is_file()})
    assert missing == [], missing
    for path, function in REFERENCE.findall(text):
        if function:
            assert function in TEST_NAME.findall((ROOT / path).read_text(encoding="utf-8")), f"{path}::{function}"


def test_each_test_a_row_names_names_its_id() -> None:
    files = read_tests()
    wrong = []
    for case, cell in rows():
        for path, _function in REFERENCE.findall(cell):
            if case not in ids_named_in(files.get(ROOT / path, "")):
                wrong.append(f"{case}: {path}")
    assert wrong == [], wrong
