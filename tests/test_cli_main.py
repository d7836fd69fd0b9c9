"""The ``dnnsim`` entry point: exit statuses and the one-line error format."""

from __future__ import annotations

import click

from sim.cli import COMMANDS, cli, main


def test_every_registered_command_imports():
    ctx = click.Context(cli)
    for name in COMMANDS:
        assert cli.get_command(ctx, name) is not None, name


def test_unknown_command_is_one_line_exit_2(capsys):
    assert main(["no-such-command"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_unknown_option_is_one_line_exit_2(capsys):
    assert main(["models", "--no-such-flag"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--no-such-flag" in err and err.count("\n") == 1


def test_help_and_version_exit_0(capsys):
    assert main(["--help"]) == 0
    assert "show-topology" in capsys.readouterr().out
    assert main(["--version"]) == 0


def test_exit_code_of_a_command_is_returned(monkeypatch):
    @click.command()
    def boom() -> None:
        click.get_current_context().exit(7)

    monkeypatch.setattr(cli, "get_command", lambda ctx, name: boom if name == "boom" else None)
    assert main(["boom"]) == 7


def test_listed_help_is_each_commands_own_first_line():
    # `dnnsim --help` prints COMMANDS' copy of each one-line help without importing the command
    ctx = click.Context(cli)
    for name, (_target, short) in COMMANDS.items():
        assert cli.get_command(ctx, name).get_short_help_str(limit=200) == short, name


def test_help_imports_no_command_module_nor_heavy_library():
    import subprocess
    import sys

    code = ("import sys; from sim.cli import main; main(['--help']); "
            "print(sorted(m for m in sys.modules if m.startswith(('sim.cli.', 'pandas', 'numpy', 'networkx', "
            "'simpy', 'pydantic', 'matplotlib'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
