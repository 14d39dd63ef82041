"""Settings come from the environment; a base URL that is neither loopback nor Anthropic's is refused."""

import pytest
from lanelab.config import ConfigError, Settings, host_allowed


def test_defaults_are_sim_mode_without_base_url(tmp_path):
    s = Settings.from_env({"LANELAB_HOME": str(tmp_path / "h"), "LANELAB_OUT": str(tmp_path / "o")})
    assert s.mode == "sim" and s.base_url is None and s.runs_dir == tmp_path / "o" / "runs"


def test_live_mode_defaults_to_the_real_api_and_needs_opt_in_flag_read():
    s = Settings.from_env({"LANELAB_MODE": "live"})
    assert s.base_url == "https://api.anthropic.com" and s.live_opt_in is False
    assert Settings.from_env({"LANELAB_MODE": "live", "LANELAB_LIVE_OPT_IN": "yes"}).live_opt_in


@pytest.mark.parametrize("url", ["https://api.anthropic.co", "http://api.anthropic.com", "https://evil.example/v1",
                                 "ftp://127.0.0.1"])
def test_mistyped_or_foreign_base_url_is_refused(url):
    assert not host_allowed(url)
    if url.startswith("http"):
        with pytest.raises(ConfigError, match="refuses"):
            Settings.from_env({"LANELAB_BASE_URL": url})


def test_unknown_mode_is_a_clear_error():
    with pytest.raises(ConfigError, match="sim, live"):
        Settings.from_env({"LANELAB_MODE": "prod"})


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://localhost:1", "https://api.anthropic.com"])
def test_allowed_hosts(url):
    assert host_allowed(url)


@pytest.mark.parametrize("name", ["LANELAB_HOME", "LANELAB_OUT"])
def test_a_folder_setting_that_names_a_file_is_one_clear_error(tmp_path, name):
    afile = tmp_path / "afile"
    afile.write_text("mine")
    with pytest.raises(ConfigError, match=f"{name}=.* is a file, not a folder"):
        Settings.from_env({name: str(afile)})
    assert Settings.from_env({name: str(tmp_path / "new")})  # a missing folder is fine: it is made when written
    assert afile.read_text() == "mine"
