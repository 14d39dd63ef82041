"""`python -m lanelab --help` lists every subcommand with one line; errors are one clear line, exit 2, no traceback."""

import subprocess
import sys

import pytest
from lanelab import cli
from lanelab.errors import UserError


@pytest.mark.slow  # a CLI process
def test_help_lists_each_subcommand_with_one_line():
    out = subprocess.run([sys.executable, "-m", "lanelab", "--help"], capture_output=True, text=True, check=True).stdout
    modules = cli.command_modules()
    assert {m.NAME for m in modules} >= {"demo"}
    for mod in modules:
        lines = [line for line in out.splitlines() if line.strip().startswith(mod.NAME + " ")]
        assert lines, f"{mod.NAME} missing from --help"
        assert "\n" not in mod.HELP and len(mod.HELP) < 120


def test_every_subcommand_has_its_place_in_the_help_order():
    names = [m.NAME for m in cli.command_modules()]
    assert sorted(names) == sorted(cli.ORDER), f"commands not in cli.ORDER (or gone): {set(names) ^ set(cli.ORDER)}"
    assert names == list(cli.ORDER)


@pytest.mark.slow  # one process per subcommand
def test_every_subcommand_has_help():
    for mod in cli.command_modules():
        out = subprocess.run([sys.executable, "-m", "lanelab", mod.NAME, "--help"], capture_output=True, text=True,
                             check=False)
        assert out.returncode == 0 and "usage:" in out.stdout


@pytest.mark.parametrize("columns", [80, 120])
def test_every_subcommands_help_fits_the_terminal(monkeypatch, columns: int) -> None:
    """Each --help's paragraphs are wrapped to the terminal (a list laid out by hand stays within 80 columns too);
    only a usage line of alternatives, which argparse will not break, may run over."""
    monkeypatch.setenv("COLUMNS", str(columns))
    parser = cli.build_parser()
    for name, sub in parser._subparsers._group_actions[0].choices.items():
        text = sub.format_help()
        described = text.split("\n\n", 1)[1]  # past the usage
        over = [line for line in described.splitlines() if len(line) > columns]
        assert not over, f"{name} --help runs over {columns} columns: {over[:2]}"
        paragraphs = (getattr(sub, "description", "") or "").split("\n\n")
        assert all(" ".join(p.split())[:40] in " ".join(text.split()) for p in paragraphs), name  # none lost


def test_user_error_is_printed_redacted_with_exit_2(monkeypatch, capsys):
    secret = "sk-ant-oat01-" + "leak" * 12

    def boom(args):
        raise UserError(f"token {secret} was rejected.", hint="Log in again.")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    ns_parser = parser._subparsers._group_actions[0].choices["demo"]
    ns_parser.set_defaults(_run=boom)
    assert cli.main(["demo"]) == 2
    err = capsys.readouterr().err
    assert secret not in err and "Log in again." in err and "Traceback" not in err


@pytest.mark.parametrize("argv,said", [
    (["matrix", "--show-requests"], "--show-requests goes with --dry-run"),
    (["diagnose", "--profile", "sdk-minimal", "--index", "3"], "--index picks one request of a --capture file"),
    (["capture", "--index", "2"], "--index goes with --to-profile NAME"),
    (["capture", "some.jsonl", "--prompt", "hi"], "a capture file, --prompt go with --to-profile NAME"),
    (["creds", "--mint", "--json"], "--json lists the credentials; it does not go with --mint"),
    (["watch", "--upstream", "http://127.0.0.1:9", "--policy", "2026-11"], "--policy sets up the embedded simulator"),
])
def test_an_option_that_would_be_ignored_is_refused_in_one_line(argv, said, tmp_path, monkeypatch, capsys):
    """An option the command would silently ignore (it means something only beside another) is said, not ignored."""
    monkeypatch.setenv("LANELAB_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("LANELAB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LANELAB_BASE_URL", raising=False)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and said in err, err
    assert not (tmp_path / "out").exists()
