"""The command line's last line of defence: what is the machine's (memory) or the user's is said
so (exit 1), and only a bug reads "internal error" (exit 3)."""

from __future__ import annotations

import pytest


def test_running_out_of_memory_is_said_as_such_not_as_a_bug(monkeypatch, capsys) -> None:
    import ttcdsl.cli.queries as queries_cli

    def exhausted(args):
        raise MemoryError()

    monkeypatch.setattr(queries_cli, "run", exhausted)
    from ttcdsl.cli import main

    assert main(["queries", "math500", "-o", "x.jsonl"]) == 1
    err = capsys.readouterr().err
    assert "out of memory" in err and "internal error" not in err


@pytest.mark.parametrize("argv, message", [
    (["plan", "policies/self_consistency.ttc", "-c", "x.jsonl", "--seed", "-1"], "--seed must be from 0"),
    (["plan", "policies/self_consistency.ttc", "-c", "x.jsonl", "--reps", "100000000"], "--reps must be at most"),
    (["simulate", "policies/self_consistency.ttc", "--seed", str(10**29)], "--seed must be from 0"),
    (["queries", "arithmetic", "-o", "q.jsonl", "--count", "100000000"], "--count must be from 1"),
    (["run", "p.yaml", "--seed", str(2**63)], "must be an integer from 0 to 9223372036854775807"),
])
def test_out_of_range_numbers_are_command_line_errors(argv, message, capsys) -> None:
    from ttcdsl.cli import main

    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2 and message in capsys.readouterr().err


def test_compare_checks_its_output_directory_before_the_comparison(tmp_path, capsys) -> None:
    """--out naming a file failed only after the whole comparison ran, and its table was lost."""
    from tests.paths import REPO
    from ttcdsl.cli import main

    taken = tmp_path / "afile"
    taken.write_text("")
    assert main(["compare", str(REPO / "policies" / "self_consistency.ttc"), "--samples",
                 str(tmp_path / "absent.jsonl"), "--out", str(taken)]) == 1
    err = capsys.readouterr().err
    assert f"--out {taken}: cannot hold the comparison: exists and is not a directory" in err
