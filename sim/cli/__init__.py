"""The ``dnnsim`` command line: a click group whose commands live in one module each.

Commands are imported lazily, so ``dnnsim --help`` stays fast and a command's heavy imports (SimPy,
matplotlib, Dask) are paid only when it runs. :func:`main` turns a :class:`~sim.errors.UserError` or a
click usage error into one line ``error: <field>: <problem>; <allowed>`` on stderr and exit status 2.
"""

from __future__ import annotations

import importlib
import sys

import click

from sim.errors import UserError

#: command name -> ("module:attribute" of its click command, its one-line help). The help is repeated here
#: so that ``dnnsim --help`` lists the commands without importing them; a test checks it against each
#: command's own docstring.
COMMANDS: dict[str, tuple[str, str]] = {
    "models": ("sim.cli.models_cmd:models",
               "List the model zoo: name, layers, params, fwd_flops_per_sample (2 FLOPs per multiply-add)."),
    "show-model": ("sim.cli.models_cmd:show_model",
                   "Print MODEL (a zoo name, a .yaml/.yml file or torch:FILE_OR_MODULE:FACTORY) layer by layer."),
    "topologies": ("sim.cli.topology_cmd:topologies",
                   "List topology kinds (with their keys and defaults) and presets (with their values)."),
    "show-topology": ("sim.cli.topology_cmd:show_topology",
                      "Print hosts, switches, links, diameter_hops and bisection_Bps of SPEC (plus α and 1/β)."),
    "collective": ("sim.cli.collective_cmd:collective",
                   "Time one collective on a simulated topology (nccl-tests style fields, one row per size)."),
    "run": ("sim.cli.run_cmd:run",
            "Simulate one training iteration (and its epoch) of CONFIG_FILE and/or the flags."),
    "best": ("sim.cli.run_cmd:best",
             "Rank every strategy and grid of CONFIG_FILE and/or the flags by iteration time."),
    "sweep": ("sim.cli.sweep_cmd:sweep",
              "Run every point of SWEEP_FILE (base, vary, zip) and write one row per point to --out."),
    "plot": ("sim.cli.plot_cmd:plot",
             "Plot RESULTS (a CSV written by dnnsim sweep) as --kind scaling, breakdown or grid into -o FILE."),
    "calibrate": ("sim.cli.calibrate_cmd:calibrate",
                  "Fit dnnsim's parameters to real measurements (nccl: nccl-tests output; compute: a dnnsim profile "
                  "CSV; throughput: measured one-GPU samples/s)."),
    "profile": ("sim.cli.profile_cmd:profile",
                "Measure every layer's forward and backward seconds with PyTorch (needs torch: pip install torch)."),
    "validate": ("sim.cli.validate_cmd:validate",
                 "Run the validation table: published measurements vs dnnsim's predictions, with median and max error."),
}


class LazyGroup(click.Group):
    """A click group that imports each command's module only when the command is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module_name, attr = entry[0].split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            return None
        return getattr(module, attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of ``--help``, from :data:`COMMANDS` (no command module is imported)."""
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][1]) for name in self.list_commands(ctx)])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dnnsim")
def cli() -> None:
    """dnnsim: time DNN training under batch, model, domain and integrated parallelism on a simulated cluster."""


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``dnnsim`` console command; returns the exit status."""
    try:
        # without standalone mode click returns a command's ctx.exit(code) as the return value
        returned = cli.main(args=argv, prog_name="dnnsim", standalone_mode=False)
    except UserError as exc:
        click.echo(f"error: {exc}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("error: interrupted; nothing more was written", err=True)
        return 130
    except click.UsageError as exc:
        where = f"{exc.ctx.command_path}: " if exc.ctx is not None else ""
        click.echo(f"error: {where}{exc.format_message()}; see --help", err=True)
        return 2
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        return exc.exit_code if exc.exit_code else 1
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except BrokenPipeError:
        return 0
    return returned if isinstance(returned, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
