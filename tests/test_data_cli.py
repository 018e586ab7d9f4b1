"""``tune data ...`` through click: summaries on success, one ``Error:`` line on bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from click.testing import CliRunner, Result

from tuner.cli.data_cmds import data
from tuner.data.gnt import write_gnt


def invoke(*args: str) -> Result:
    return CliRunner().invoke(data, list(args), prog_name="tune data")


def assert_one_line_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("Error: "), result.output
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def write_writer(path: Path, chars: str) -> Path:
    write_gnt(((c, np.full((6, 5), 40 * i, np.uint8)) for i, c in enumerate(chars)), path)
    return path


def test_import_gnt_then_info_then_check(tmp_path: Path) -> None:
    for writer in range(1, 6):
        write_writer(tmp_path / "trn" / f"{writer}-c.gnt", "人从众大")
    write_writer(tmp_path / "tst" / "9-c.gnt", "人从众大")
    out = tmp_path / "casia"

    result = invoke("import-gnt", str(tmp_path / "trn"), "--out", str(out), "--chars", "人,从,众")
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines() == [
        f"imported 15 images of 3 characters from 5 .gnt files into {out / 'Train'}"
    ]
    result = invoke(
        "import-gnt", str(tmp_path / "tst" / "9-c.gnt"), "--out", str(out), "--split", "Test",
        "--chars", "人,从,众",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "into " + str(out / "Test") in result.output

    png = tmp_path / "sizes.png"
    result = invoke("info", str(out), "--out", str(png))
    assert result.exit_code == 0, result.output
    assert "人" in result.output and "15" in result.output
    assert "thin" not in result.output  # every class has as many images as the others
    assert png.is_file()

    result = invoke("check", str(out), "--workers", "1")
    assert result.exit_code == 0, result.output
    assert "3 classes; train 12, val 3 (writer-aware split), test 3" in result.output
    assert "cache: 0 hit, 2 miss" in result.output
    assert "cache: 2 hit, 0 miss" in invoke("check", str(out)).output


def test_import_gnt_course55_preset(tmp_path: Path) -> None:
    source = write_writer(tmp_path / "1-c.gnt", "人鱼宀")
    result = invoke("import-gnt", str(source), "--out", str(tmp_path / "o"), "--chars", "course55")
    assert result.exit_code == 0, result.output
    assert "imported 2 images of 2 characters" in result.output
    assert sorted(p.name for p in (tmp_path / "o" / "Train").iterdir()) == ["人", "鱼"]


def test_truncated_gnt_is_one_line_with_the_offset(tmp_path: Path) -> None:
    source = write_writer(tmp_path / "7-c.gnt", "人从")
    source.write_bytes(source.read_bytes()[:-1])
    result = invoke("import-gnt", str(source), "--out", str(tmp_path / "o"))
    assert_one_line_error(result, "7-c.gnt is truncated at byte 40")
    assert not (tmp_path / "o").exists()


def test_bad_datasets_are_one_line_errors(tmp_path: Path) -> None:
    assert_one_line_error(invoke("check", str(tmp_path / "nope")), "does not exist", "tune data")
    assert_one_line_error(invoke("info", str(tmp_path)), "not a dataset", "import-gnt")
    (tmp_path / "ds" / "Train" / "a").mkdir(parents=True)
    assert_one_line_error(invoke("check", str(tmp_path / "ds")), "Train/a has no images")
    result = invoke("import-gnt", str(tmp_path / "x.gnt"), "--out", str(tmp_path / "o"))
    assert_one_line_error(result, "x.gnt does not exist")
    unknown = invoke(
        "import-gnt", str(tmp_path), "--out", str(tmp_path / "o"), "--chars", "chars.txt"
    )
    assert_one_line_error(unknown, "unknown character set")


def test_check_warns_once_about_unreadable_images(small_tree: Path) -> None:
    (small_tree / "Train" / "a" / "1.png").write_bytes(b"broken")
    result = CliRunner().invoke(data, ["check", str(small_tree), "--workers", "1"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 1 and "skipped 1 unreadable image" in warnings[0]


def test_cache_command(small_tree: Path) -> None:
    invoke("check", str(small_tree), "--workers", "1")
    assert "2 cached array files" in invoke("cache").output
    assert "removed 2 cached array files" in invoke("cache", "--clear").output


def test_data_commands_are_registered_under_tune() -> None:
    from tuner.cli import main

    result = CliRunner().invoke(main, ["data", "--help"])
    assert result.exit_code == 0
    for command in ("import-gnt", "info", "check", "cache"):
        assert command in result.output
