"""``spsr fetch``: list the model files metrics and training variants need, and download them into
the cache (to warm it for a machine without network access)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from spsr_cli._common import console, guarded, model_fetching

if TYPE_CHECKING:
    from spsr.weights.fetch import Need


def _status(need: Need) -> str:
    from spsr.weights import digest_matches

    spec = need.spec
    path = spec.cache_path
    if not path.is_file():
        return "missing"
    return "ok" if digest_matches(path, spec) else "corrupt"


@guarded
def fetch(
    names: Annotated[list[str] | None, typer.Argument(
        help="Metrics (lpips, ma, pi), training variants (g, esrgan, vgg, resnet, u, ...), files "
        "(alexnet, vgg19, resnet18, ma-model) or all; commas or spaces. Default: all.",
        show_default=False, metavar="NAME")] = None,
    list_only: Annotated[bool, typer.Option(
        "--list", help="Only show each file, its cache path, source and status; fetch nothing.")] = False,
    offline: Annotated[bool, typer.Option(
        "--offline", help="No network access (as SPSR_OFFLINE=1): check the cache only.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the files as JSON records.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Download the model files that metrics and training need, verified, into the cache.

    ImageNet weights (AlexNet for LPIPS, VGG19, ResNet18) go to torchvision's cache,
    $TORCH_HOME/hub/checkpoints (default ~/.cache/torch/hub/checkpoints); Ma et al.'s model.mat
    (for ma and pi) to $SPSR_CACHE/nrqm (default ~/.cache/spsr/nrqm). To prepare a machine
    without network access, fetch here, copy those folders there, and run the commands there with
    --offline (or SPSR_OFFLINE=1).

    Examples:

      spsr fetch lpips,pi

      spsr fetch g u --list
    """
    from spsr.train.needs import needs_for
    from spsr.weights import ensure_files

    wanted = [n for arg in (names or ["all"]) for n in arg.replace(",", " ").split()]
    needs = needs_for(wanted or ["all"])
    unique = list({n.spec.key: n for n in needs}.values())
    if not list_only:
        with model_fetching(quiet or as_json, offline):
            ensure_files(unique)  # one error listing every file that cannot be had
    _show(needs, unique, as_json, quiet)


def _show(needs: list, unique: list, as_json: bool, quiet: bool) -> None:
    users: dict[str, list[str]] = {}
    for n in needs:
        users.setdefault(n.spec.key, []).append(n.purpose)
    records = [
        {"file": n.spec.key, "title": n.spec.title, "path": str(n.spec.cache_path),
         "url": n.spec.source_url, "status": _status(n), "needed_by": list(dict.fromkeys(users[n.spec.key]))}
        for n in unique
    ]
    if as_json:
        typer.echo(json.dumps(records, indent=2))
        return
    if quiet:
        return
    if not records:
        console.print("no model files needed", highlight=False)
        return
    table = Table(title="Model files")
    for column in ("File", "Needed by", "Status"):
        table.add_column(column, overflow="fold")
    colour = {"ok": "green", "missing": "yellow", "corrupt": "red"}
    for r in records:
        table.add_row(r["title"], ", ".join(r["needed_by"]), f"[{colour[r['status']]}]{r['status']}[/]")
    console.print(table)
    # Paths and URLs on lines of their own, never folded: a terminal wraps them visually, and a
    # copy (or a double-click) takes the whole of each.
    for r in records:
        console.print(f"{r['title']}:", highlight=False)
        console.print(f"  cache  {r['path']}", highlight=False, soft_wrap=True)
        console.print(f"  source {r['url']}", highlight=False, soft_wrap=True)
