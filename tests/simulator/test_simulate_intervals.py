"""Intervals from a mean over a few draws (``ttc simulate --seeds S``) are Student's t intervals.

The normal quantile 1.96 on a mean of S draws covers the truth far less than 95% of the time when
S is small (two draws: about 70%), so a simulation of few draws used to call a policy better than
uniform on noise. These tests hold the intervals to their stated coverage, and the verdict and the
printed spread to the same quantile.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import t

from ttcdsl.cli import main
from ttcdsl.simulate import _interval
from ttcdsl.verdict import Z95, critical, half_width, judge, verdict

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("draws", [2, 3, 8])
def test_a_mean_over_few_draws_has_a_95_percent_interval(draws) -> None:
    """Over 20000 sets of normal draws the interval covers the true mean 95% of the time (the
    normal quantile covered 70% at two draws, 81% at three and 91% at eight)."""
    rng = np.random.default_rng(draws)
    values = rng.normal(0.5, 0.1, size=(20000, draws))
    covered = np.mean([(s := _interval(v))["lo"] <= 0.5 <= s["hi"] for v in values])
    assert covered == pytest.approx(0.95, abs=0.006)
    one = _interval(values[0])
    assert one["df"] == draws - 1
    assert half_width(one) == pytest.approx(t.ppf(0.975, draws - 1) * one["se"])


def test_one_draw_has_no_interval() -> None:
    one = _interval(np.array([0.4]))
    assert one["mean"] == 0.4 and np.isnan(one["se"]) and np.isnan(half_width(one))


def test_the_verdict_reads_the_quantile_of_its_degrees_of_freedom() -> None:
    # 3 points with an error of 1.2: beyond the normal's interval, within t's at 4 draws
    assert judge(0.03, 0.012) == "better"
    assert judge(0.03, 0.012, df=3) == "no better"
    assert judge(-0.03, 0.012, df=3) == "no better"
    assert judge(-0.05, 0.012, df=3) == "worse"
    text = verdict(0.03, 0.012, df=3)
    half = 100 * t.ppf(0.975, 3) * 0.012
    assert text == f"no better than uniform at equal spend: +3.0 points (95% CI {3 - half:+.1f}..{3 + half:+.1f})"
    assert critical() == Z95 and critical(float("inf")) == Z95
    with pytest.raises(ValueError):
        critical(0)


def test_simulate_prints_and_judges_by_the_draws_quantile(capsys) -> None:
    """`ttc simulate --seeds 3`: every interval in the JSON is t with 2 degrees of freedom, the
    verdict's CI is the difference's t interval, and the table prints the same half widths."""
    policy = str(REPO / "policies" / "early_stopping_sc.ttc")
    assert main(["simulate", policy, "--queries", "200", "--seeds", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    q = t.ppf(0.975, 2)
    for name in ("accuracy", "samples"):
        summary = report["simulated"][name]
        assert summary["df"] == 2
        assert summary["hi"] - summary["mean"] == pytest.approx(q * summary["se"])
    d = report["difference"]
    assert report["verdict"] == verdict(d["mean"], d["se"], df=2)
    oracle = report["oracle"]["objective"]
    assert oracle["hi"] - oracle["mean"] == pytest.approx(q * oracle["se"])

    assert main(["simulate", policy, "--queries", "200", "--seeds", "3"]) == 0
    out = capsys.readouterr().out
    accuracy = report["simulated"]["accuracy"]
    assert f"{100 * accuracy['mean']:.1f} ± {100 * half_width(accuracy):.1f}" in out


def test_a_rates_interval_stops_at_0_and_1_and_says_so():
    """Over two draws a t interval ran to 146% coverage ("72.0 ± 127.1"): a rate's interval is
    cut at its bounds, its standard error kept, and the cell shows the range it was cut to."""
    import numpy as np

    from ttcdsl.simulate import RATE, _interval
    from ttcdsl.verdict import format_interval

    wide = _interval(np.array([0.44, 1.0]), RATE)
    assert wide["lo"] == 0.0 and wide["hi"] == 1.0 and wide["se"] == pytest.approx(0.28)
    assert format_interval(wide, 100.0, 1) == "72.0 (0.0..100.0)"
    narrow = _interval(np.array([0.70, 0.72, 0.74]), RATE)
    assert format_interval(narrow, 100.0, 1) == f"72.0 ± {100 * (narrow['hi'] - narrow['lo']) / 2:.1f}"
