"""``tune spaces ...``: list the search spaces and show one. (Owned by tuner.space.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from tuner.errors import SpaceError

_DIR_OPTION = click.option(
    "--dir",
    "dirs",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Look for search spaces in this folder first (repeatable).",
)


@contextmanager
def _one_line_errors() -> Iterator[None]:
    """A SpaceError as one ``Error: ...`` line and exit status 2, without the usage text."""
    try:
        yield
    except SpaceError as e:
        click.echo(f"Error: {e.format_message()}", err=True)
        click.get_current_context().exit(2)


def _search_dirs(dirs: tuple[Path, ...]) -> list[Path] | None:
    from tuner.space import default_search_dirs

    return [*dirs, *default_search_dirs()] if dirs else None


def _fmt(value: Any) -> str:
    from tuner.space import format_value

    return format_value(value)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "no timeout"
    for unit, size in (("h", 3600.0), ("m", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit} timeout"
    return f"{seconds:g}s timeout"


@click.group()
def spaces() -> None:
    """Search spaces: the YAML files that say what a study searches (search_spaces/*.yaml)."""


@spaces.command("list")
@_DIR_OPTION
def list_cmd(dirs: tuple[Path, ...]) -> None:
    """List the search spaces that `tune run NAME` can use."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from tuner.space import default_search_dirs, find_space_files, read_space_file
    from tuner.space.parse import display_path

    search = _search_dirs(dirs)
    files = find_space_files(search)
    console = Console()
    if not files:
        where = ", ".join(display_path(d) for d in (search or default_search_dirs()))
        click.echo(f"No search spaces in {where}; put a .yaml file there or set TUNER_SPACES_DIR.")
        return
    table = Table(title="Search spaces", title_justify="left")
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("model")
    table.add_column("params", justify="right")
    table.add_column("budget")
    table.add_column("description")
    table.add_column("file", overflow="fold")
    broken = 0
    for name, path in files.items():
        try:
            space = read_space_file(path)
        except SpaceError as e:
            broken += 1
            table.add_row(
                Text(name),
                Text("invalid", style="red"),
                "",
                "",
                Text(e.format_message(), style="red"),
                Text(display_path(path)),
            )
            continue
        budget = f"{space.budget.n_trials} trials"
        if space.budget.timeout is not None:
            budget += f", {_duration(space.budget.timeout)}"
        table.add_row(
            Text(space.name),
            Text(space.model),
            str(len(space.params)),
            budget,
            Text(space.description),
            Text(display_path(path)),
        )
    console.print(table)
    if broken:
        console.print(
            Text(f"{broken} invalid file(s); `tune spaces show NAME` says what to fix.", "red")
        )


@spaces.command("show")
@click.argument("name")
@_DIR_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the space as JSON instead.")
def show_cmd(name: str, dirs: tuple[Path, ...], as_json: bool) -> None:
    """Show search space NAME (a name from `tune spaces list`, or a path to a .yaml file)."""
    from tuner.space import load_space

    with _one_line_errors():
        space = load_space(name, search_dirs=_search_dirs(dirs))
    if as_json:
        data = {
            **space.to_dict(),
            "source": str(space.source) if space.source else None,
            "fingerprint": space.fingerprint(),
        }
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    _print_space(space)


def _print_space(space: Any) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from tuner.space import FloatParam, IntParam
    from tuner.space.parse import display_path

    console = Console()
    title = Text(space.name, style="bold")
    if space.description:
        title.append(f"  {space.description}", style="default")
    console.print(title)
    info = Table.grid(padding=(0, 2))
    info.add_column(style="dim")
    info.add_column()
    info.add_row("file", Text(display_path(space.source) if space.source else "-"))
    info.add_row("model", Text(space.model))
    info.add_row("dataset", Text(space.dataset))
    info.add_row("objective", Text(f"{space.objective.direction} {space.objective.metric}"))
    t = space.training
    info.add_row(
        "training",
        Text(
            f"max_epochs {t.max_epochs}, patience {t.patience}, batch_size {t.batch_size}, "
            f"min_delta {_fmt(t.min_delta)}"
        ),
    )
    info.add_row(
        "budget", Text(f"{space.budget.n_trials} trials, {_duration(space.budget.timeout)}")
    )
    info.add_row("fingerprint", Text(space.fingerprint()))
    console.print(info)

    params = Table(title=f"Parameters ({len(space.params)})", title_justify="left")
    params.add_column("name", style="bold", no_wrap=True)
    params.add_column("type")
    params.add_column("range / choices")
    params.add_column("scale")
    params.add_column("active when")
    for p in space.params:
        scale = ""
        if isinstance(p, IntParam | FloatParam):
            scale = "log" if p.log else "linear"
        params.add_row(
            Text(p.name),
            p.type_name,
            Text(p.describe()),
            scale,
            Text(" and ".join(str(c) for c in p.when) or "always"),
        )
    console.print(params)

    if space.fixed:
        fixed = Table(title="Fixed values", title_justify="left")
        fixed.add_column("name", style="bold")
        fixed.add_column("value")
        for key, value in space.fixed.items():
            fixed.add_row(Text(key), Text(_fmt(value)))
        console.print(fixed)

    if space.enqueue:
        queue = Table(
            title="Enqueued trials (run first)",
            title_justify="left",
            caption="- = inactive or sampled",
            caption_justify="left",
        )
        queue.add_column("param", style="bold", no_wrap=True)
        for i in range(len(space.enqueue)):
            queue.add_column(f"#{i + 1}")
        for p in space.params:
            queue.add_row(
                Text(p.name),
                *(Text(_fmt(e[p.name]) if p.name in e else "-") for e in space.enqueue),
            )
        console.print(queue)
    else:
        console.print(Text("No enqueued trials.", style="dim"))
