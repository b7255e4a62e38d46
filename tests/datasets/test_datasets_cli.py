"""`ttc queries` (public question sets as queries files) and `ttc split` (calibration and
evaluation parts by query)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ttcdsl.cli import main
from ttcdsl.datasets import SOURCES, load_source, read_queries
from ttcdsl.datasets.split import in_calibration, split_ids
from ttcdsl.samples import content_hash, load


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_queries_writes_every_known_set(shared_data: Path, tmp_path: Path, name: str) -> None:
    out = tmp_path / f"{name}.jsonl"
    assert main(["queries", name, "--data-dir", str(shared_data), "-o", str(out)]) == 0
    written, loaded = read_queries(out), load_source(name, shared_data)
    assert written.queries == loaded.queries and len(written) > 0
    assert all(q.gold is not None for q in written)


def test_queries_mistakes(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "q.jsonl"
    assert main(["queries", "--list"]) == 0
    assert "math500" in capsys.readouterr().out
    for argv in (["queries", "math5000", "--data-dir", str(shared_data), "-o", str(out)],
                 ["queries", "math500", "-o", str(out)]):  # fmt: skip
        with pytest.raises(SystemExit) as caught:
            main(argv)
        assert caught.value.code == 2
    assert main(["queries", "math500", "--data-dir", str(tmp_path), "-o", str(out)]) == 1
    assert "no such file" in capsys.readouterr().err and not out.exists()
    assert main(["queries", "aime24", "--data-dir", str(shared_data), "-o", str(out)]) == 0
    assert main(["queries", "aime24", "--data-dir", str(shared_data), "-o", str(out)]) == 1
    assert "already exists" in capsys.readouterr().err


def test_split_rule_is_deterministic_stable_and_near_the_fraction() -> None:
    ids = [f"q{i}" for i in range(10_000)]
    calibration, evaluation = split_ids(ids, fraction=0.3, seed=7)
    assert sorted(calibration + evaluation) == sorted(ids) and not set(calibration) & set(evaluation)
    assert split_ids(ids, fraction=0.3, seed=7) == (calibration, evaluation)
    # Binomial(10000, 0.3): standard deviation 0.0046; 5 of them.
    assert abs(len(calibration) / len(ids) - 0.3) < 0.023
    # Adding queries moves none of the old ones; another seed is another split.
    more = split_ids(ids + [f"new{i}" for i in range(500)], fraction=0.3, seed=7)[0]
    assert [q for q in more if not q.startswith("new")] == list(calibration)
    assert split_ids(ids, fraction=0.3, seed=8)[0] != calibration
    assert all(in_calibration(q, fraction=0.3, seed=7) for q in calibration)


def _split(tmp_path: Path, table: Path, queries: Path, *extra: str) -> list[Path]:
    outs = [tmp_path / n for n in ("c.jsonl", "e.parquet", "qc.jsonl", "qe.jsonl")]
    argv = ["split", str(table), "--fraction", "0.4", "--seed", "3", "-o", str(outs[0]),
            str(outs[1]), "--queries", str(queries), "--queries-out", str(outs[2]), str(outs[3]),
            *extra]  # fmt: skip
    assert main(argv) == 0
    return outs


def test_split_a_table_and_its_queries(shared_data: Path, tmp_path: Path) -> None:
    table, queries = tmp_path / "pool.jsonl", tmp_path / "q.jsonl"
    assert main(["import", str(shared_data / "pools" / "qwen25math_math100_x8.jsonl"),
                 "-f", "qwen25math-eval", "-o", str(table), "--queries-out", str(queries)]) == 0  # fmt: skip
    calib, evaluation, q_calib, q_eval = _split(tmp_path, table, queries)
    whole, parts = load(table), [load(calib), load(evaluation)]
    ids = [set(p.query_ids()) for p in parts]
    assert not ids[0] & ids[1] and ids[0] | ids[1] == set(whole.query_ids())
    assert sum(len(p) for p in parts) == len(whole) == 800  # every sample, with its query
    assert all(len(p.by_query()[q]) == 8 for p in parts for q in p.query_ids())
    assert [set(read_queries(q).ids()) for q in (q_calib, q_eval)] == ids
    assert ids[0] == {q for q in whole.query_ids() if in_calibration(q, fraction=0.4, seed=3)}
    note = parts[0].meta.notes["split"]
    assert note["part"] == "calibration" and note["of"] == content_hash(whole)
    assert parts[1].meta.notes["split"]["part"] == "evaluation"
    # A part's rows are the whole table's rows, unchanged.
    assert content_hash(whole.where(query_ids=ids[1]).with_meta(parts[1].meta)) == content_hash(parts[1])


def test_split_mistakes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps({"id": "only", "pred": "1"}) + "\n")
    one = tmp_path / "one.jsonl"
    assert main(["import", str(log), "-f", "generic", "--query-id-field", "id", "-o", str(one)]) == 0
    capsys.readouterr()
    assert main(["split", str(one), "-o", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")]) == 1
    assert "part would be empty" in capsys.readouterr().err
    for extra in (["--fraction", "1"], ["--fraction", "0"], ["--queries", str(log)]):
        with pytest.raises(SystemExit) as caught:
            main(["split", str(one), "-o", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl"), *extra])
        assert caught.value.code == 2
    capsys.readouterr()
    # an output that is the input: the outputs rule plan and simulate follow, naming the file
    assert main(["split", str(one), "-o", str(one), str(tmp_path / "b.jsonl")]) == 1
    assert f"-o {one}: is an input of this command" in capsys.readouterr().err
    assert main(["split", str(one), "-o", str(tmp_path / "a.jsonl"), str(tmp_path / "a.jsonl")]) == 1
    err = capsys.readouterr().err
    # one option's two files: said as such, not as "the file of -o" (the option itself)
    assert "is given twice to -o" in err and "each output needs its own file" in err
    assert not (tmp_path / "a.jsonl").exists()


def test_split_into_a_directory_it_cannot_write_replaces_neither_part(tmp_path: Path, capsys) -> None:
    """The calibration part was replaced, then the evaluation part refused: two parts of two
    different splits, sharing queries."""
    import os

    table = tmp_path / "w.jsonl"
    assert main(["workload", "-o", str(table), "--queries", "30", "--samples", "4"]) == 0
    locked = tmp_path / "ro"
    locked.mkdir()
    first = tmp_path / "a.jsonl"
    assert main(["split", str(table), "-o", str(first), str(locked / "b.jsonl"), "--seed", "0"]) == 0
    before = first.read_bytes()
    os.chmod(locked, 0o555)
    try:
        if os.access(locked, os.W_OK):  # root writes a read-only directory; nobody writes /proc
            if not Path("/proc/self").is_dir():
                pytest.skip("no directory here refuses a new file: root writes read-only ones, and there is no /proc")
            locked = Path("/proc/self")
        capsys.readouterr()
        second = locked / "b.jsonl"
        assert main(["split", str(table), "-o", str(first), str(second), "--seed", "1",
                     "--force"]) == 1
        assert f"{second}: cannot write in {locked}" in capsys.readouterr().err
        assert first.read_bytes() == before
    finally:
        os.chmod(tmp_path / "ro", 0o755)


def test_split_refuses_another_tables_queries_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A queries file none of whose queries is in the table (another table's) is refused before
    anything is written; one that misses some of the table's queries is said on stderr."""
    table, queries = tmp_path / "w.jsonl", tmp_path / "w_q.jsonl"
    assert main(["workload", "-o", str(table), "--dataset", str(queries), "--queries", "30",
                 "--samples", "4"]) == 0
    other = tmp_path / "other_q.jsonl"
    other.write_text("".join(line.replace('"synth-', '"other-') + "\n"
                             for line in queries.read_text().splitlines()))
    capsys.readouterr()
    argv = ["split", str(table), "-o", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl"),
            "--queries-out", str(tmp_path / "qa.jsonl"), str(tmp_path / "qb.jsonl")]
    assert main([*argv, "--queries", str(other)]) == 1
    assert "none of its 30 queries is in" in capsys.readouterr().err
    assert not (tmp_path / "a.jsonl").exists() and not (tmp_path / "qa.jsonl").exists()
    lines = queries.read_text().splitlines()
    fewer = tmp_path / "fewer_q.jsonl"
    fewer.write_text("\n".join(lines[:20]) + "\n")
    assert main([*argv, "--queries", str(fewer)]) == 0
    assert "warning: 10 of the table's 30 queries are not in" in capsys.readouterr().err
