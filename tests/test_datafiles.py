"""Data files are read once per version, give callers their own copy, and fail with a clear, typed error; a schema
names the file, the key and the expected type of whatever does not match."""

import os

import pytest
from lanelab.datafiles import (
    DataFileError,
    Either,
    Int,
    ListOf,
    MapOf,
    OneOf,
    Str,
    Table,
    describe,
    key_path,
    load_cached,
    pinned,
    problems,
    read_toml,
    validate,
)
from lanelab.errors import UserError


class MyError(UserError):
    pass


def _counted(tmp_path):
    """A data file ``a = 1``, the paths the build read, and a build that reads ``a``."""
    path = tmp_path / "x.toml"
    path.write_text('a = 1\n')
    calls = []

    def build(p):
        calls.append(p)
        return read_toml(p)["a"]

    return path, calls, build


def _edit(path, text):
    path.write_text(text)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))


def test_reads_once_per_version_and_sees_edits(tmp_path):
    path, calls, build = _counted(tmp_path)
    assert load_cached(path, build) == 1 and load_cached(path, build) == 1 and len(calls) == 1
    _edit(path, 'a = 2\n')
    assert load_cached(path, build) == 2 and len(calls) == 2


def test_a_pinned_block_keeps_the_version_it_read_first_and_reads_edits_after_it(tmp_path, monkeypatch):
    from lanelab import datafiles

    path, calls, build = _counted(tmp_path)
    stats = []
    real_mtime = datafiles._mtime
    monkeypatch.setattr(datafiles, "_mtime", lambda *a: stats.append(a[0]) or real_mtime(*a))
    with pinned():
        assert load_cached(path, build) == 1
        looked = len(stats)
        _edit(path, 'a = 2\n')
        with pinned():  # a block inside another keeps the outer's versions
            assert load_cached(path, build) == 1
        assert [load_cached(path, build) for _ in range(5)] == [1] * 5
        assert len(stats) == looked and len(calls) == 1  # no look at the file after the first reading
    assert load_cached(path, build) == 2 and len(calls) == 2


def test_a_pinned_block_keeps_a_build_that_gave_none_and_tells_builds_apart(tmp_path):
    path, calls, build = _counted(tmp_path)

    def reader():
        return lambda p: calls.append(p)  # a build made anew on every call (as load_lane_table's), giving None

    with pinned():
        assert load_cached(path, reader()) is None
        _edit(path, 'a = 2\n')
        assert load_cached(path, reader()) is None  # the same build (its code): its version is kept
        assert load_cached(path, build, key="other") == 2  # another build reads the file as it is now
    assert len(calls) == 2


def test_a_pinned_block_covers_the_tasks_it_starts_and_not_other_contexts(tmp_path):
    import asyncio
    import contextvars

    path, _, build = _counted(tmp_path)
    outside = contextvars.copy_context()  # taken before the block: not pinned

    async def read_in_tasks():
        return await asyncio.gather(*(asyncio.to_thread(load_cached, path, build) for _ in range(3)))

    with pinned():
        assert load_cached(path, build) == 1
        _edit(path, 'a = 2\n')
        assert asyncio.run(read_in_tasks()) == [1, 1, 1]
        assert outside.run(load_cached, path, build) == 2


def test_callers_get_their_own_copy(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text('[t]\nitems = [1, 2]\n')
    read_toml(path)["t"]["items"].append(3)
    assert read_toml(path)["t"]["items"] == [1, 2]


def test_missing_and_invalid_files_raise_the_callers_error_naming_the_file(tmp_path):
    with pytest.raises(MyError, match="Cannot read the policy file .*missing.toml"):
        read_toml(tmp_path / "missing.toml", "policy file", MyError)
    bad = tmp_path / "bad.toml"
    bad.write_text("a = [1,\n")
    with pytest.raises(DataFileError, match="bad.toml is not valid TOML") as err:
        read_toml(bad)
    assert "LANELAB_DATA" in str(err.value)


# ------------------------------------------------------------------------------------------------------- schemas
SPEC = Table({
    "name": Str(nonempty=True),
    "count?": int,
    "ratio?": float,
    "on?": bool,
    "kind?": OneOf("a", "b"),
    "tags?": [str],
    "items?": [Table({"id": str, "pattern?": Str(regex=True)})],
    "by_name?": MapOf(Table({"level": Int(0, 9)})),
    "either?": Either(str, [str]),
    "nullable?": Either(str, None),
    "path?": Str(pattern=r"/.*", meaning="a path starting with /"),
    "some?": ListOf(str, nonempty=True),
})


def test_a_document_of_the_right_shape_has_no_problem():
    doc = {"name": "x", "count": 3, "ratio": 2, "on": False, "kind": "b", "tags": [], "items": [{"id": "i"}],
           "by_name": {"odd key!": {"level": 9}}, "either": ["a"], "nullable": None, "path": "/v1", "some": ["s"],
           "extra": {"anything": [1]}}
    assert problems(doc, SPEC) == []
    assert validate(doc, SPEC) is doc


@pytest.mark.parametrize(("doc", "expected"), [
    ({}, "name is missing (it must be a non-empty string)"),
    ({"name": " "}, "name must be a non-empty string (found an empty string)"),
    ({"name": 5}, "name must be a non-empty string (found an integer)"),
    ({"name": "x", "count": True}, "count must be an integer (found a boolean)"),
    ({"name": "x", "count": 1.5}, "count must be an integer (found a number)"),
    ({"name": "x", "ratio": "1"}, "ratio must be a number (found a string)"),
    ({"name": "x", "on": "yes"}, "on must be true or false (found a string)"),
    ({"name": "x", "kind": "c"}, "kind must be one of 'a', 'b' (found 'c')"),
    ({"name": "x", "kind": "x" * 60}, "kind must be one of 'a', 'b' (found another string)"),
    ({"name": "x", "tags": "t"}, "tags must be a list of strings (found a string)"),
    ({"name": "x", "tags": ["t", 2]}, "tags[1] must be a string (found an integer)"),
    ({"name": "x", "items": {"id": "i"}}, "items must be an array of tables (found a table)"),
    ({"name": "x", "items": [{}]}, "items[0].id is missing (it must be a string)"),
    ({"name": "x", "items": [{"id": "i", "pattern": "(("}]}, "items[0].pattern must be a valid regular expression"),
    ({"name": "x", "by_name": {"a b": {"level": 10}}}, 'by_name."a b".level must be an integer from 0 to 9'),
    ({"name": "x", "either": 3}, "either must be a string or a list of strings (found an integer)"),
    ({"name": "x", "either": [3]}, "either[0] must be a string (found an integer)"),
    ({"name": "x", "nullable": 3}, "nullable must be a string or null (found an integer)"),
    ({"name": "x", "path": "v1"}, "path must be a path starting with / (found a string of another form)"),
    ({"name": "x", "some": []}, "some must be a non-empty list of strings (found an empty list)"),
    ([], "the document must be a table (found a list)"),
])
def test_each_mismatch_names_the_key_and_the_expected_type(doc, expected):
    found = problems(doc, SPEC)
    assert found and found[0].startswith(expected), found


def test_validate_raises_the_callers_error_in_one_line_naming_the_file(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text('name = "x"\n[by_name.one]\nlevel = "high"\n')
    with pytest.raises(MyError) as err:
        read_toml(path, "widget list", MyError, schema=SPEC)
    text = str(err.value)
    assert "\n" not in text and str(path) in text and "by_name.one.level must be an integer from 0 to 9" in text
    assert "(found a string)" in text


def test_closed_tables_refuse_unknown_keys_and_values_are_never_echoed():
    secret = "Zq8TnW4kR2vLp9Xs7Bd3Hf6Jm1Yc5Ga"
    found = problems({"a": 1, "zz": secret}, Table({"a?": int}, closed=True))
    assert found == ["zz is not a key this file knows (known: a)"]
    assert secret not in " ".join(problems({"a": secret}, Table({"a": int})))
    assert key_path("factors", "max_tokens", "levels", "1", 3) == 'factors.max_tokens.levels.1[3]'
    assert describe([Table({})]) == "an array of tables" and describe(Either(str, [str])) == "a string or a list of strings"


@pytest.mark.parametrize(("content", "expected"), [
    ("a = 1\n".encode("utf-16"), "looks like UTF-16"),
    ("a = 1\n".encode("utf-16-le"), "looks like UTF-16"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not UTF-8"),
    (b"a = 1\n\x00\n", "NUL bytes"),
    (b"a = " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested too deeply"),
    (b"a = [1,\n", "not valid TOML"),
])
def test_binary_utf16_deep_and_broken_files_are_one_line(tmp_path, content, expected):
    path = tmp_path / "x.toml"
    path.write_bytes(content)
    with pytest.raises(DataFileError) as err:
        read_toml(path, schema=Table({"a?": object}))
    assert expected in str(err.value) and "\n" not in str(err.value) and str(path) in str(err.value)


def test_one_file_read_under_two_schemas_is_checked_against_each(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text('a = "text"\n')
    assert read_toml(path, schema=Table({"a": str})) == {"a": "text"}
    with pytest.raises(DataFileError, match="a must be an integer"):
        read_toml(path, schema=Table({"a": int}))
