"""The `ttc` command as a user runs it: exit codes, messages, files it writes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ttcdsl.cli import main
from ttcdsl.lang.codes import CODES

from tests.paths import POLICIES, REPO


def test_check_accepts_every_example_policy(capsys):
    assert main(["check", *map(str, POLICIES)]) == 0
    out = capsys.readouterr().out
    assert out.count(": ok (policy ") == len(POLICIES)


def test_check_reports_errors_with_location_and_exit_code_1(tmp_path, capsys):
    path = tmp_path / "bad.ttc"
    path.write_text("policy bad\nsampling { max_tokens 8 }\nanswer majority_vot\nallocate fixed 2\n")
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:3:8" in err and "TTC104" in err and "did you mean 'majority_vote'?" in err
    # a Windows file's line ends are not shown as an unprintable character (it was U+FFFD)
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert "3 | answer majority_vot\n" in err and "\ufffd" not in err


def test_check_says_a_files_error_count_once(tmp_path, capsys):
    path = tmp_path / "bad.ttc"
    path.write_text("policy bad\nsampling { max_tokens 8 }\nanswer majority_vot\n"
                    "allocate fixed 2 maximize accuracyy\n")
    assert main(["check", str(path)]) == 1
    out, err = capsys.readouterr()
    assert err.count("TTC1") == 2 and "2 errors" not in err
    assert out.strip() == f"{path}: 2 errors"


def test_check_of_a_missing_file_and_a_directory_is_a_user_error(tmp_path, capsys):
    assert main(["check", str(tmp_path / "missing.ttc"), str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "does not exist" in err and "is a directory" in err and "Traceback" not in err


def test_check_refuses_huge_and_binary_files(tmp_path, capsys):
    huge = tmp_path / "huge.ttc"
    huge.write_bytes(b"#" * (1 << 20) + b"\n#")
    binary = tmp_path / "binary.ttc"
    binary.write_bytes(b"policy x\n\xff\xfe\x00")
    nul = tmp_path / "nul.ttc"
    nul.write_bytes(b"policy x\x00\n")
    assert main(["check", str(huge), str(binary), str(nul)]) == 1
    err = capsys.readouterr().err
    assert "TTC003" in err and err.count("TTC002") == 2


def test_check_with_queries_checks_total_budgets_against_the_batch(tmp_path, capsys):
    path = tmp_path / "total.ttc"
    path.write_text(
        "policy total\nbudget { total samples <= 100  samples per query in 2..8 }\n"
        "sampling { max_tokens 8 }\nanswer majority_vote\nallocate optimal\n"
    )
    assert main(["check", str(path), "--queries", "50"]) == 0
    assert main(["check", str(path), "--queries", "60"]) == 1
    assert "60 queries need at least 120 samples" in capsys.readouterr().err
    assert main(["check", str(path), "--queries", "0"]) == 1


def test_strict_turns_warnings_into_failure(tmp_path):
    path = tmp_path / "warn.ttc"
    path.write_text("policy w\nsampling { max_tokens 8 }\nfeature unused = samples\n"
                    "answer majority_vote\nallocate fixed 2\n")
    assert main(["check", str(path)]) == 0
    assert main(["check", "--strict", str(path)]) == 1


def test_fmt_rewrites_in_place_keeping_comments_and_check_mode_reports(tmp_path, capsys):
    path = tmp_path / "messy.ttc"
    path.write_text(
        "# header\npolicy   messy\n\n\n\nsampling{max_tokens 8 temperature 0.7}# why\n"
        "answer majority_vote allocate fixed 2\n"
    )
    assert main(["fmt", "--check", str(path)]) == 1
    assert "would reformat" in capsys.readouterr().err
    assert main(["fmt", str(path)]) == 0
    assert path.read_text() == (
        "# header\npolicy messy\n\nsampling { max_tokens 8  temperature 0.7 }  # why\n"
        "answer majority_vote\nallocate fixed 2\n"
    )
    assert main(["fmt", "--check", str(path)]) == 0
    assert not list(tmp_path.glob(".ttc-fmt-*")), "no temporary file may be left behind"


def test_fmt_of_a_symbolic_link_formats_its_target_and_keeps_the_link(tmp_path, capsys):
    target = tmp_path / "policies" / "messy.ttc"
    target.parent.mkdir()
    target.write_text("policy   messy\nanswer majority_vote allocate fixed 2\n")
    link = tmp_path / "current.ttc"
    link.symlink_to(target)
    assert main(["fmt", str(link)]) == 0
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert target.read_text() == "policy messy\nanswer majority_vote\nallocate fixed 2\n"
    assert main(["fmt", "--check", str(target)]) == 0


def test_fmt_leaves_a_read_only_file_as_it_is(tmp_path, capsys):
    path = tmp_path / "kept.ttc"
    original = "policy   kept\nanswer majority_vote allocate fixed 2\n"
    path.write_text(original)
    path.chmod(0o444)
    assert main(["fmt", str(path)]) == 1
    assert path.read_text() == original and "is read-only" in capsys.readouterr().err


def test_fmt_leaves_a_file_with_syntax_errors_untouched(tmp_path, capsys):
    path = tmp_path / "broken.ttc"
    original = "policy p\nbudget { mean samples per query <= }\n"
    path.write_text(original)
    assert main(["fmt", str(path)]) == 1
    assert path.read_text() == original
    assert "TTC011" in capsys.readouterr().err


def test_explain_prints_every_code_and_rejects_unknown_ones(capsys):
    for code in CODES:
        assert main(["explain", code.lower()]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"{code}: ") and len(out) > 60
    assert main(["explain", "101"]) == 0
    assert main(["explain", "TTC999"]) == 1
    assert "unknown diagnostic code" in capsys.readouterr().err
    assert main(["explain", "--list"]) == 0
    assert capsys.readouterr().out.count("TTC") == len(CODES)
    # a code given with --list was ignored, and an empty one listed every code
    with pytest.raises(SystemExit) as caught:
        main(["explain", "--list", "TTC101"])
    assert caught.value.code == 2 and "takes no code" in capsys.readouterr().err
    assert main(["explain", ""]) == 1
    assert "unknown diagnostic code ''" in capsys.readouterr().err
    # a policy given for a code: said so, with the command that lists its diagnostics
    assert main(["explain", "pol/ghost.ttc"]) == 1
    err = capsys.readouterr().err
    assert "'pol/ghost.ttc' names a file, not a diagnostic code" in err and "ttc check pol/ghost.ttc" in err


def test_bad_command_line_exits_2():
    with pytest.raises(SystemExit) as exit_info:
        main(["check"])
    assert exit_info.value.code == 2


def test_an_internal_error_is_reported_without_a_traceback(monkeypatch, tmp_path, capsys):
    import ttcdsl.lang.api

    def broken(path):
        raise RuntimeError("boom")

    monkeypatch.setattr(ttcdsl.lang.api, "check_file", broken)
    assert main(["check", str(POLICIES[0])]) == 3
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: boom" in err and "Traceback" not in err


def test_ctrl_c_before_a_command_starts_is_interrupted_not_a_traceback(monkeypatch, capsys):
    import ttcdsl.cli

    def interrupted():
        raise KeyboardInterrupt  # as while Python imports the subcommands

    monkeypatch.setattr(ttcdsl.cli, "build_parser", interrupted)
    monkeypatch.setattr(sys, "argv", ["ttc", "check", str(POLICIES[0])])
    with pytest.raises(SystemExit) as exit_info:
        ttcdsl.cli.entry()
    assert exit_info.value.code == 130 and capsys.readouterr().err == "interrupted\n"


def test_ttc_check_imports_no_heavy_library():
    # `ttc check` must start instantly: no jax, cvxpy, vllm or torch behind it.
    code = (
        "import sys\n"
        "from ttcdsl.cli import main\n"
        f"assert main(['check', {str(POLICIES[0])!r}]) == 0\n"
        "heavy = sorted(m for m in ('jax', 'cvxpy', 'vllm', 'torch', 'pyarrow') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr


def test_console_script_runs():
    result = subprocess.run(
        [sys.executable, "-m", "ttcdsl", "check", str(POLICIES[0])], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert ": ok (policy" in result.stdout
