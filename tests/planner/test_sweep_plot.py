"""`ttc plan --sweep LO..HI --sweep-plot FILE.png`: the frontier and uniform as a PNG, and clean
user errors."""

from __future__ import annotations

import pytest

from tests.policy_texts import one_bin_vote
from ttcdsl.cli import main
from ttcdsl.errors import UserError
from ttcdsl.planner.sweep import write_sweep_plot
from ttcdsl import plotting as plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

TINY = one_bin_vote("tiny_vote", "majority vote, one bin, a mean budget")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("sweep")
    calibration = d / "calib.jsonl"
    assert main(["workload", "-o", str(calibration), "--queries", "30", "--samples", "8",
                 "--seed", "1"]) == 0
    policy = d / "tiny.ttc"
    policy.write_text(TINY, encoding="utf-8")
    return policy, calibration


def plan(policy, calibration, *args: str) -> int:
    return main(["plan", str(policy), "-c", str(calibration), "--reps", "4", "--no-cross-check",
                 *args])


def assert_png(path):
    from matplotlib.image import imread

    assert path.read_bytes()[:8] == PNG_MAGIC
    height, width = imread(path).shape[:2]
    assert 300 <= width <= 4000 and 200 <= height <= 4000


def test_sweep_plot_from_the_cli(inputs, tmp_path, capsys):
    out = tmp_path / "front.png"
    assert plan(*inputs, "--sweep", "1..8:0.5", "--sweep-plot", str(out)) == 0
    assert_png(out)
    captured = capsys.readouterr()
    assert "frontier" in captured.out  # the table is still printed
    assert f"sweep plot written to {out}" in captured.err
    assert [p.name for p in tmp_path.iterdir()] == ["front.png"]  # no temporary file left


def sweep(empty: bool = False) -> dict:
    points = []
    for i, n in enumerate([1.0, 2.0, 3.0, 4.0]):
        points.append({"budget": n, "objective": None if empty else 0.5 + 0.05 * i, "spent": n,
                       "samples_per_query": n, "uniform": None if empty else 0.5 + 0.04 * i})
    return {"limit": "mean samples per query <= 4", "objective": "accuracy",
            "method": "frontier", "points": points}


def test_one_line_each_for_the_frontier_and_uniform(tmp_path, monkeypatch):
    figures = []
    real = plots.new_figure
    monkeypatch.setattr(plots, "new_figure", lambda *a: figures.append(real(*a)) or figures[-1])
    out = write_sweep_plot(sweep(), tmp_path / "s.png", policy="tiny_vote")
    assert out == tmp_path / "s.png"
    assert_png(out)
    (ax,) = figures[0].axes
    assert [line.get_label() for line in ax.get_lines()] == [
        "tiny_vote (frontier)", "uniform at equal spend",
    ]
    assert list(ax.get_lines()[0].get_ydata()) == pytest.approx([0.5, 0.55, 0.6, 0.65])
    assert list(ax.get_lines()[1].get_ydata()) == pytest.approx([0.5, 0.54, 0.58, 0.62])
    assert "tiny_vote" in ax.get_title()


def test_a_sweep_without_points_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no point to plot"):
        write_sweep_plot(sweep(empty=True), tmp_path / "s.png")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sweep-plot", "{d}/f.png"], "--sweep-plot needs --sweep"),
        (["--sweep", "1..4", "--sweep-plot", "{d}/f.pdf"], "name the file *.png"),
        (["--sweep", "1..4", "--sweep-plot", "{d}/missing/f.png"], "does not exist"),
        (["--sweep", "1..4", "--sweep-plot", "{d}"], "is a directory"),
    ],
)
def test_bad_sweep_plot_arguments_are_user_errors(inputs, tmp_path, capsys, args, message):
    args = [a.format(d=tmp_path) for a in args]
    assert plan(*inputs, *args) == 1
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err and "internal error" not in err
    assert list(tmp_path.iterdir()) == []  # refused before planning: nothing written
