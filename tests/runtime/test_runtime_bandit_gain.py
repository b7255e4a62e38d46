"""The bandit's learned skip (`ttcdsl.runtime.bandit_gain`): the water-filling threshold, the
ironing of a query's projected rounds, and the fit on a calibration table, with the numbers
worked out by hand in each docstring."""

from __future__ import annotations

import math

import pytest

from ttcdsl.lang.api import parse_policy
from ttcdsl.runtime.bandit_gain import GainTable, Settings, fit, skipped
from ttcdsl.samples import SampleRow

K1 = Settings(round_samples=1, first=1, first_check=1, cap=math.inf)


def _rows(qid: str, answers: list[str], gold: str = "7") -> list[SampleRow]:
    return [
        SampleRow(query_id=qid, sample_index=i, answer=a, correct=a == gold,
                  completion_tokens=10, finish_reason="stop")
        for i, a in enumerate(answers)
    ]


def test_the_budget_buys_the_best_rounds_and_skips_the_rest() -> None:
    """States: one sample (always unanimous) is worth 0.4 a round and retires half the time;
    two unanimous samples 0.05, two split 0.3, any query at two samples 0.1, and the table stops
    there. Query A (two equal answers) projects [0.05]; B (two different answers) [0.3]; C (one
    sample) [0.4, then at two samples in the mean state, alive with probability 0.5: 0.5 * 0.1
    = 0.05]. Room for 2 samples buys 0.4 (C) and 0.3 (B): tau = 0.3, so A (0.05) waits."""
    table = GainTable(states={"1:unanimous": (0.4, 0.5, 10, 0.0),
                              "2:unanimous": (0.05, 0.0, 10, 0.0),
                              "2:split": (0.3, 0.0, 10, 0.0), "2:any": (0.1, 0.0, 20, 0.0)},
                      orders=1)
    active = [("A", _rows("A", ["5", "5"]), 0.1), ("B", _rows("B", ["5", "6"]), 0.2),
              ("C", _rows("C", ["5"]), 0.3)]
    assert skipped(table, K1, None, active, room=2) == {"A"}
    # room for every projected round (A, B, and C's two): nobody waits
    assert skipped(table, K1, None, active, room=4) == set()
    # less than one round: the ledger cuts the round in the rule's order, nobody is skipped
    assert skipped(table, K1, None, active, room=0) == set()
    # no bound on samples: nothing to weigh against
    assert skipped(table, K1, None, active, room=None) == set()


def test_a_skip_needs_the_calibration_to_be_sure() -> None:
    """As above, but A's state was seen on few draws: its gain 0.05 has a standard error of
    0.15, so the upper end of its 95% interval, 0.05 + 1.96 * 0.15 = 0.344, is above tau = 0.3:
    A is served. With an error of 0.12 the upper end is 0.285 < 0.3: A waits."""
    states = {"1:unanimous": (0.4, 0.5, 10, 0.0), "2:split": (0.3, 0.0, 10, 0.0),
              "2:any": (0.1, 0.0, 20, 0.0)}
    active = [("A", _rows("A", ["5", "5"]), 0.1), ("B", _rows("B", ["5", "6"]), 0.2),
              ("C", _rows("C", ["5"]), 0.3)]
    unsure = GainTable(states={**states, "2:unanimous": (0.05, 0.0, 3, 0.15)}, orders=1)
    assert skipped(unsure, K1, None, active, room=2) == set()
    surer = GainTable(states={**states, "2:unanimous": (0.05, 0.0, 3, 0.12)}, orders=1)
    assert skipped(surer, K1, None, active, room=2) == {"A"}


def test_a_state_the_calibration_never_saw_is_never_skipped() -> None:
    table = GainTable(states={"2:split": (0.3, 0.0, 10, 0.0)}, orders=1)
    active = [("A", _rows("A", ["5", "5"]), 0.1), ("B", _rows("B", ["5", "6"]), 0.2)]
    assert skipped(table, K1, None, active, room=1) == set()


def test_a_later_round_worth_more_lifts_the_first_one() -> None:
    """A's rounds are worth 0.1 (its state) then 0.5 (any query at two samples), ironed: both
    0.3; B's 0.2 then nothing known. Room for 2 samples: A's ironed rounds (0.3, 0.3) beat B's
    0.2, so B waits (without ironing A's first round, 0.1, would be skipped while its second,
    which needs it, was bought)."""
    table = GainTable(states={"1:unanimous": (0.1, 0.0, 10, 0.0), "2:any": (0.5, 0.0, 10, 0.0),
                              "3:unanimous": (0.2, 0.0, 10, 0.0)}, orders=1)
    active = [("A", _rows("A", ["5"]), 0.1), ("B", _rows("B", ["5", "5", "5"]), 0.2)]
    assert skipped(table, K1, None, active, room=2) == {"B"}


def test_fit_counts_each_active_state_once_per_order() -> None:
    """Coverage with a gold solved rule, one sample a round. H: four samples, all the wrong
    answer 5: in every order it is active at 1, 2 and 3 samples (unanimous), each round adds
    nothing. S: four distinct wrong answers: active at 1 (unanimous), 2 and 3 (split), nothing
    either. Every gain and retire is 0 whatever the order; each state has one draw per order,
    and the mean state of each count (`any`) two."""
    policy = parse_policy(
        'policy g "gold elimination"\noffline evaluation\n'
        "budget {\n  mean samples per query <= 3\n  samples per query in 1..16\n}\n"
        "sampling { temperature 0.8  max_tokens 64 }\nscorer gold = gold\n"
        "allocate bandit {\n  round 1 samples\n  explore all\n  solved when score(gold) >= 1\n}"
        " maximize coverage\nanswer best_of_n(gold)\n",
        name="g.ttc",
    )
    table = fit(policy, {"H": _rows("H", ["5"] * 4), "S": _rows("S", ["1", "2", "3", "4"])},
                orders=3)
    assert table.states == {
        "1:unanimous": (0.0, 0.0, 6, 0.0), "2:split": (0.0, 0.0, 3, 0.0),
        "2:unanimous": (0.0, 0.0, 3, 0.0),
        "3:split": (0.0, 0.0, 3, 0.0), "3:unanimous": (0.0, 0.0, 3, 0.0),
        "1:any": (0.0, 0.0, 6, 0.0), "2:any": (0.0, 0.0, 6, 0.0), "3:any": (0.0, 0.0, 6, 0.0),
    }
    assert table.score_edges is None  # the signal scorer is gold: no level
    # a query solved at once is never active: a third query, all correct, adds no draw
    with_solved = fit(policy, {"H": _rows("H", ["5"] * 4), "S": _rows("S", ["1", "2", "3", "4"]),
                               "R": _rows("R", ["7"] * 4)}, orders=3)
    assert with_solved.states == table.states


def test_fit_estimates_the_chance_that_the_next_sample_solves() -> None:
    """Coverage with a gold solved rule, one sample a round, two logged samples a query. H
    (5, 5) is active at one sample in every order and its second sample never solves it. M
    (5, 7) is active at one sample only in the orders that draw the 5 first (d - orders of
    them, d the state's draws), and then its second sample solves it and retires it. So the
    state's gain and retire are both (d - orders) / d, whatever the orders drawn, with the
    Bernoulli standard error sqrt(g (1 - g) / (d + 1)) (one pseudo-draw of the count's mean,
    here the same state's)."""
    policy = parse_policy(
        'policy g "gold elimination"\noffline evaluation\n'
        "budget {\n  mean samples per query <= 3\n  samples per query in 1..16\n}\n"
        "sampling { temperature 0.8  max_tokens 64 }\nscorer gold = gold\n"
        "allocate bandit {\n  round 1 samples\n  explore all\n  solved when score(gold) >= 1\n}"
        " maximize coverage\nanswer best_of_n(gold)\n",
        name="g.ttc",
    )
    orders = 16
    table = fit(policy, {"H": _rows("H", ["5", "5"]), "M": _rows("M", ["5", "7"])},
                orders=orders)
    gain, retire, draws, error = table.states["1:unanimous"]
    assert orders < draws < 2 * orders  # M drew its 5 first in some orders, not all
    share = (draws - orders) / draws
    assert gain == pytest.approx(share) and retire == pytest.approx(share)
    assert error == pytest.approx(math.sqrt(share * (1 - share) / (draws + 1)))
    assert set(table.states) == {"1:unanimous", "1:any"}  # no third sample is logged
