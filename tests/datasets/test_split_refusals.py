"""`ttc split` refuses what it cannot do before it writes anything."""

from __future__ import annotations

from ttcdsl.cli import main
from ttcdsl.samples import save
from ttcdsl.workloads import builtin_workload


def _table(tmp_path):
    table, dataset = builtin_workload(n_queries=40, n_samples=2, seed=1)
    path = tmp_path / "t.jsonl"
    save(table, path)
    return path


def test_an_empty_queries_file_is_refused(tmp_path, capsys):
    path = _table(tmp_path)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    outs = [tmp_path / n for n in ("c.jsonl", "e.jsonl", "qc.jsonl", "qe.jsonl")]
    assert main(["split", str(path), "-o", str(outs[0]), str(outs[1]), "--queries", str(empty),
                 "--queries-out", str(outs[2]), str(outs[3])]) == 1
    assert f"{empty}: the file has no queries" in capsys.readouterr().err
    assert not any(p.exists() for p in outs)


def test_a_missing_output_directory_is_refused_before_any_part_is_written(tmp_path, capsys):
    path = _table(tmp_path)
    first = tmp_path / "c.jsonl"
    assert main(["split", str(path), "-o", str(first), str(tmp_path / "nodir" / "e.jsonl")]) == 1
    err = capsys.readouterr().err
    assert "nodir: the directory" not in err and "does not exist" in err and "nodir" in err
    assert not first.exists()
