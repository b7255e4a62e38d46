"""`ttc workload` end to end through ttcdsl.cli.main: outputs, exit codes, no partial files."""

from __future__ import annotations

from pathlib import Path

import pytest

from ttcdsl.cli import main
from ttcdsl.datasets import read_queries
from ttcdsl.samples import content_hash, load
from ttcdsl.workloads import builtin_workload


def test_writes_a_loadable_table_and_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, queries = tmp_path / "calib.jsonl", tmp_path / "queries.jsonl"
    code = main(["workload", "-o", str(out), "--dataset", str(queries), "--queries", "20",
                 "--samples", "6", "--seed", "3"])  # fmt: skip
    assert code == 0
    table = load(out)
    expected, dataset = builtin_workload(20, 6, seed=3)
    assert content_hash(table) == content_hash(expected)
    assert read_queries(queries).queries == dataset.queries
    printed = capsys.readouterr().out
    assert "wrote 120 synthetic samples (20 queries, 6 samples each)" in printed
    assert content_hash(table) in printed


def test_parquet_output_follows_the_extension(tmp_path: Path) -> None:
    out = tmp_path / "calib.parquet"
    assert main(["workload", "-o", str(out), "--queries", "10", "--samples", "3"]) == 0
    assert out.read_bytes()[:4] == b"PAR1" and len(load(out)) == 30


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--queries", "-5"], "--queries must be at least 1"),
        (["--samples", "0"], "--samples must be at least 1"),
        (["--seed", "-1"], "--seed must be >= 0"),
    ],
)
def test_bad_counts_are_command_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    out = tmp_path / "calib.jsonl"
    with pytest.raises(SystemExit) as caught:  # exit 2: a bad command line (was 1)
        main(["workload", "-o", str(out), *args])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_missing_parent_directories_are_created(tmp_path: Path) -> None:
    out = tmp_path / "new" / "deeper" / "calib.jsonl"
    queries = tmp_path / "other" / "queries.jsonl"
    assert main(["workload", "-o", str(out), "--dataset", str(queries), "--queries", "5"]) == 0
    assert out.is_file() and queries.is_file()


def test_unwritable_or_existing_outputs_leave_nothing_behind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["workload", "-o", str(tmp_path / "calib.csv")]) == 1
    assert "cannot tell the table format" in capsys.readouterr().err
    assert main(["workload", "-o", str(tmp_path / "c.jsonl"), "--dataset",
                 str(tmp_path / "q.json")]) == 1  # fmt: skip
    assert "written as JSONL" in capsys.readouterr().err
    # a directory where the table should go: refused, with or without --force
    blocker = tmp_path / "calib.jsonl"
    blocker.mkdir()
    queries = tmp_path / "queries.jsonl"
    assert main(["workload", "-o", str(blocker)]) == 1
    assert f"{blocker}: is a directory, not a samples table" in capsys.readouterr().err
    assert main(["workload", "-o", str(blocker), "--dataset", str(queries), "--force"]) == 1
    assert f"{blocker}: is a directory, not a samples table" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calib.jsonl"]
    assert blocker.is_dir() and not any(blocker.iterdir())


def test_a_failed_rename_leaves_neither_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ttcdsl.samples import atomic

    out, queries = tmp_path / "calib.parquet", tmp_path / "queries.jsonl"
    real_replace = atomic.os.replace

    def failing_replace(source, destination):
        if Path(destination) == out:
            raise PermissionError(13, "Permission denied", str(destination))
        return real_replace(source, destination)

    monkeypatch.setattr(atomic.os, "replace", failing_replace)
    args = ["workload", "-o", str(out), "--dataset", str(queries), "--queries", "5"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert f"{out}: cannot write (Permission denied)" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # no table, no dataset, no temporary file


def test_same_path_for_table_and_dataset_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "both.jsonl"
    assert main(["workload", "-o", str(path), "--dataset", str(path), "--queries", "3"]) == 1
    assert "same file" in capsys.readouterr().err and not path.exists()
