"""The manifest's rules on their own: which member names pass, which manifests parse."""

from __future__ import annotations

import json
import re

import pytest
from archive_attacks import EMPTY_SHA256, listed

from segtui.core.archive import MANIFEST_NAME, ArchiveLimits, ArchiveRefused
from segtui.core.archive_manifest import name_problem, parse_manifest

KIND = "project"


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("models/1/model.bin", None),
        ("images/ünï cødé photo.png", None),
        ("..hidden/...", None),
        ("a" * 255, None),
        ("a/../b", '".." component'),
        ("\x7f", "control character"),
        ("\x85", "control character"),
    ],
)
def test_name_problem(name: str, problem: str | None) -> None:
    found = name_problem(name)
    assert found == problem if problem is None else problem in (found or "")


GOOD_MANIFEST = {
    "format": 1,
    "kind": KIND,
    "segtui_version": "0.1.0",
    "created_at": 1.5,
    "members": [{"path": "a.txt", "size": 0, "sha256": EMPTY_SHA256}],
}


@pytest.mark.parametrize(
    ("change", "phrase"),
    [
        ({"format": "1"}, '"format" is not a whole number'),
        ({"format": 0}, '"format" is not a whole number'),
        ({"format": True}, '"format" is not a whole number'),
        ({"kind": 3}, '"kind" and "segtui_version" must be text'),
        ({"created_at": "today"}, '"created_at" is not a number'),
        ({"created_at": float("nan")}, "not a finite number"),
        ({"extra": 1}, 'unknown field "extra"'),
        ({"members": [[]]}, "member 1 is not a JSON object"),
        ({"members": [{"path": "a", "size": 0}]}, 'member 1 lacks "sha256"'),
        ({"members": [{"path": "a", "size": -1, "sha256": EMPTY_SHA256}]}, "size that is not"),
        ({"members": [{"path": "a", "size": True, "sha256": EMPTY_SHA256}]}, "size that is not"),
        ({"members": [{"path": 1, "size": 0, "sha256": EMPTY_SHA256}]}, '"path" that is not text'),
        ({"members": [{"path": "a", "size": 0, "sha256": EMPTY_SHA256.upper()}]}, "64 hex"),
        ({"members": [listed("a", b"")] * 2}, '"a" appears more than once'),
    ],
)
def test_parse_manifest_refuses_a_wrong_shape(change: dict[str, object], phrase: str) -> None:
    data = json.dumps({**GOOD_MANIFEST, **change}).encode()
    with pytest.raises(ArchiveRefused, match=re.escape(phrase)) as refused:
        parse_manifest(data, kind=KIND, limits=ArchiveLimits())
    assert refused.value.member == ("a" if "appears" in phrase else MANIFEST_NAME)


@pytest.mark.parametrize(
    ("data", "phrase"),
    [
        (b"[]", "it is not a JSON object"),
        (b"\xff\xfe{}", "it is not UTF-8 text"),
        (b'{"format": ' + b"9" * 5000 + b"}", "is not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "is not valid JSON"),
        (b'{"format": 1, "kind": "x"', "is not valid JSON (Expecting"),
    ],
)
def test_parse_manifest_refuses_what_is_not_a_manifest(data: bytes, phrase: str) -> None:
    with pytest.raises(ArchiveRefused, match=re.escape(phrase)):
        parse_manifest(data, kind=KIND, limits=ArchiveLimits())


def test_parse_manifest_accepts_the_shape_write_archive_writes() -> None:
    parsed = parse_manifest(json.dumps(GOOD_MANIFEST).encode(), kind=KIND, limits=ArchiveLimits())
    assert parsed == GOOD_MANIFEST
