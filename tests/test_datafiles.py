"""Data files are read once per version, give callers their own copy, and fail with a clear, typed error."""

import os

import pytest
from lanelab.datafiles import DataFileError, load_cached, read_toml
from lanelab.errors import UserError


class MyError(UserError):
    pass


def test_reads_once_per_version_and_sees_edits(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text('a = 1\n')
    calls = []

    def build(p):
        calls.append(p)
        return read_toml(p)["a"]

    assert load_cached(path, build) == 1 and load_cached(path, build) == 1 and len(calls) == 1
    path.write_text('a = 2\n')
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    assert load_cached(path, build) == 2 and len(calls) == 2


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
