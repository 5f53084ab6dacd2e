"""The ``spsr`` Typer application: one subcommand per module, registered here."""

from __future__ import annotations

import typer

import spsr
from spsr_cli._common import SpsrCommand, SpsrGroup

app = typer.Typer(
    cls=SpsrGroup,
    name="spsr",
    help="Structure-preserving super-resolution: prepare data, train SPSR models, upscale, evaluate.",
    no_args_is_help=True,
    add_completion=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"spsr {spsr.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", help="Print the version and exit.", callback=_version, is_eager=True
    ),
) -> None:
    """Structure-preserving super-resolution toolkit."""


def _register() -> None:
    # Each subcommand lives in its own module; registration order is the order in --help.
    from spsr_cli import cmd_gradmap, cmd_upscale

    app.command("upscale", cls=SpsrCommand)(cmd_upscale.upscale)
    app.command("gradmap", cls=SpsrCommand)(cmd_gradmap.gradmap)

    from spsr_cli import cmd_export

    app.command("export", cls=SpsrCommand)(cmd_export.export)

    from spsr_cli import cmd_prepare_data

    app.command("prepare-data", cls=SpsrCommand)(cmd_prepare_data.prepare_data)

    from spsr_cli import cmd_user_study_sheet

    app.add_typer(cmd_user_study_sheet.app, name="user-study-sheet")

    from spsr_cli import cmd_eval

    app.command("eval", cls=SpsrCommand)(cmd_eval.evaluate)

    from spsr_cli import cmd_fetch

    app.command("fetch", cls=SpsrCommand)(cmd_fetch.fetch)

    from spsr_cli import cmd_pretrain_nse, cmd_pretrain_psnr, cmd_train

    app.command("pretrain-psnr", cls=SpsrCommand)(cmd_pretrain_psnr.pretrain_psnr)
    app.command("pretrain-nse", cls=SpsrCommand)(cmd_pretrain_nse.pretrain_nse)
    app.command("train", cls=SpsrCommand)(cmd_train.train)

    from spsr_cli import cmd_plot

    app.command("plot", cls=SpsrCommand)(cmd_plot.plot)

    from spsr_cli import cmd_ablate

    app.command("ablate", cls=SpsrCommand)(cmd_ablate.ablate)


_register()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
