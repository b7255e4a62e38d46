"""The catalogue of diagnostic codes: a stable code, a title and the long explanation that
`ttc explain CODE` prints. Codes are never renumbered; a retired code stays here, marked so.

Ranges: TTC0xx input and syntax, TTC1xx names and definitions, TTC2xx types, arity, units and
values, TTC3xx bins and strategies, TTC4xx budgets, TTC5xx what a run can observe, TTC6xx
allocation and stop rules.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Code:
    code: str
    title: str
    explanation: str


def _catalogue(*codes: Code) -> dict[str, Code]:
    table: dict[str, Code] = {}
    for code in codes:
        assert code.code not in table, f"duplicate code {code.code}"
        table[code.code] = code
    return table


CODES: dict[str, Code] = _catalogue(
    # ---- input and syntax -------------------------------------------------------------------
    Code(
        code="TTC001",
        title="the policy file cannot be read",
        explanation="""\
The file does not exist, is a directory, or cannot be opened. Check the path; `ttc check`
takes policy files (conventionally ending in `.ttc`).""",
    ),
    Code(
        code="TTC002",
        title="the policy file is not UTF-8 text",
        explanation="""\
Policies are UTF-8 text. The file contains bytes that are not valid UTF-8, or NUL bytes, which
usually means it is a binary file or was saved in another encoding. Re-save it as UTF-8.""",
    ),
    Code(
        code="TTC003",
        title="the policy file is too large",
        explanation="""\
A policy is a short description of how to spend compute; files over 1 MiB are refused so that a
wrong path (a log, a dataset) fails fast instead of being parsed.""",
    ),
    Code(
        code="TTC010",
        title="unexpected character",
        explanation="""\
The character cannot start any word of the language. Names are ASCII letters, digits and `_`; numbers
look like `8`, `0.95`, `4_000_000`, `8k`, `4M`; strings are in double quotes; comments start
with `#`. Operators: + - * / ( ) , = { } [ ] .. and comparisons >= <= > < == !=.""",
    ),
    Code(
        code="TTC011",
        title="unexpected word or symbol",
        explanation="""\
The parser met something that cannot come next. The message lists what could have come instead.
Every statement starts with a keyword: policy, offline, budget, sampling, probe, feature,
difficulty, bins, strategy, scorer, stop, allocate, answer. Example:

    budget {
      mean samples per query <= 8
    }""",
    ),
    Code(
        code="TTC012",
        title="unexpected end of file",
        explanation="""\
The file ends in the middle of a statement: usually a missing `}` or an expression cut short.""",
    ),
    Code(
        code="TTC013",
        title="unterminated string",
        explanation="""\
A string starts with `"` and must end with `"` on the same line. Use `\\"` for a quote inside.""",
    ),
    Code(
        code="TTC014",
        title="invalid number",
        explanation="""\
Numbers may use `_` between digits (`4_000_000`) and one suffix: k (thousand), M (million),
G (billion). A number must be finite and at most 10^15; an `_` may not end a number or sit next
to the decimal point.""",
    ),
    Code(
        code="TTC015",
        title="expression too deep",
        explanation="""\
Expressions may be at most 100 operations deep: each operator and function call is one level,
whether nested (-(-(x))) or chained (a + b + c + ..., where each + is one). Parentheses alone
add none. A real policy never needs more; split the expression into several features.""",
    ),
    Code(
        code="TTC017",
        title="expression too deep through the features it reads",
        explanation="""\
An expression, with the features it reads written out in place, may be at most 100 operations
deep, as one written out by hand may (TTC015): `feature b = a * 2` is one level deeper than
`a`, so a chain of features each reading the previous one is as deep as all of them together.
Compute the value in fewer steps; a real policy needs a few levels, not a hundred.""",
    ),
    # ---- names and definitions ------------------------------------------------------------------
    Code(
        code="TTC100",
        title="missing or misplaced policy header",
        explanation="""\
Every policy file starts with exactly one header naming the policy, optionally with a one-line
description:

    policy adaptive_vote "majority vote, more samples where probes disagree"
""",
    ),
    Code(
        code="TTC101",
        title="unknown name",
        explanation="""\
An expression names something that is neither a feature defined above it, an observable
(answers, tokens, logprobs, scores(s), correct, prompt_nll) nor a built-in metric
(top_share, beta_confidence, samples). Features must be defined before they are used.""",
    ),
    Code(
        code="TTC102",
        title="defined more than once",
        explanation="""\
Features, scorers and bins have one definition each, a bin has one strategy, and the header,
budget, global sampling, probe, difficulty, bins, allocate and answer statements appear at most
once, as does each sampling parameter within one sampling block. The note points at the first
definition. A feature may not take a name the language defines (an observable, a function, or
`difficulty`, which `bins by difficulty` and the `difficulty = EXPR` statement own).""",
    ),
    Code(
        code="TTC103",
        title="unknown function",
        explanation="""\
Built-in functions: top_share(answers), answer_entropy(answers), distinct(answers),
mean(xs), min(xs), max(xs), std(xs), count(xs), clip(x, lo, hi), normalize(x), score(scorer),
scores(scorer). `ttc explain TTC200` lists their argument types.""",
    ),
    Code(
        code="TTC104",
        title="unknown strategy or aggregation",
        explanation="""\
Strategies (per bin): majority_vote, best_of_n(scorer), weighted_vote(scorer), keep_probe, single.
Aggregations (`answer`): majority_vote, best_of_n(scorer), weighted_vote(scorer).""",
    ),
    Code(
        code="TTC105",
        title="unknown scorer kind",
        explanation="""\
Scorer kinds:
    scorer prm  = reward_model "Qwen/Qwen2.5-Math-PRM-7B"   # a reward model, by name or path
    scorer conf = confidence                               # mean token log-probability
    scorer gold = gold                                     # the gold answer (offline evaluation)""",
    ),
    Code(
        code="TTC106",
        title="unknown sampling parameter",
        explanation="""\
Sampling parameters: temperature, top_p, top_k, min_p, max_tokens, logprobs, seed,
presence_penalty, frequency_penalty, repetition_penalty.""",
    ),
    Code(
        code="TTC107",
        title="unknown unit",
        explanation="""\
Budgets are counted in `samples` (generated completions) or `tokens` (completion tokens; add
`charge prompt tokens` to the budget block to count prompt tokens too).""",
    ),
    Code(
        code="TTC108",
        title="unknown keyword value",
        explanation="""\
Some statements take one of a fixed set of words:
    allocate ... maximize accuracy | coverage
    explore all | ucb | gap | entropy
    bill samples | tokens""",
    ),
    Code(
        code="TTC109",
        title="feature used before it is defined",
        explanation="""\
A feature may only use features defined above it, which also rules out cycles. Move the
definition up.""",
    ),
    Code(
        code="TTC110",
        title="unknown bin",
        explanation="""\
Bin names come from the `bins ... as NAME, NAME, ...` statement; budget scopes (`for NAME`),
per-bin sampling and stop blocks and fixed allocations must use one of them.""",
    ),
    Code(
        code="TTC111",
        title="unknown scorer",
        explanation="""\
A scorer must be declared before strategies, features or stop rules can use it:
    scorer prm = reward_model "Qwen/Qwen2.5-Math-PRM-7B"
    strategy hard = best_of_n(prm)""",
    ),
    Code(
        code="TTC150",
        title="unused definition (warning)",
        explanation="""\
A feature or scorer is defined but nothing uses it. It costs nothing at run time for features,
but an unused reward-model scorer would still be loaded; remove it or use it.""",
    ),
    # ---- types, arity, units, values --------------------------------------------------------------
    Code(
        code="TTC200",
        title="wrong number of arguments",
        explanation="""\
Signatures:
    top_share(answers)  answer_entropy(answers)  distinct(answers)
    mean(xs)  min(xs)  max(xs)  std(xs)  count(xs)      xs: tokens, logprobs, scores(s), correct
    clip(x, lo, hi)  normalize(x)                       x: a number
    score(s)  scores(s)                                 s: a declared scorer
    best_of_n(s)  weighted_vote(s)                      s: a declared scorer
    majority_vote  keep_probe  single                   no arguments""",
    ),
    Code(
        code="TTC201",
        title="argument of the wrong type",
        explanation="""\
Each function takes arguments of a given kind: `answers` (the extracted answers of the samples),
a list of numbers (tokens, logprobs, scores(s), correct), a number, or a scorer name. For
example `mean(answers)` is wrong (answers are not numbers): use `top_share(answers)`.""",
    ),
    Code(
        code="TTC202",
        title="a list where a number is expected",
        explanation="""\
Features, difficulty and conditions are numbers per query. Observables such as `tokens` or
`scores(prm)` hold one value per sample: reduce them first, e.g. `mean(tokens)`.""",
    ),
    Code(
        code="TTC203",
        title="unit does not fit here",
        explanation="""\
Probes, bandit rounds and fixed allocations count samples; `charge prompt tokens` and token
billing need tokens. `probe 4 samples` is right, `probe 4 tokens` is not.""",
    ),
    Code(
        code="TTC204",
        title="value out of range",
        explanation="""\
Examples of valid ranges: temperature >= 0, 0 < top_p <= 1, 0 <= min_p <= 1, max_tokens >= 1,
0 <= logprobs <= 20, budgets > 0, probe >= 1, `unanimous last k` and `unanimous window k`
with k >= 2, `after n` with n >= 1, bandit round >= 1.""",
    ),
    Code(
        code="TTC205",
        title="a whole number is required",
        explanation="""\
Sample counts, rounds, max_tokens, top_k, logprobs and seeds are whole numbers: `probe 4 samples`,
not `probe 2.5 samples`.""",
    ),
    Code(
        code="TTC206",
        title="a string or a number is required",
        explanation="""\
Sampling parameters take numbers; a reward model scorer takes a string with the model's name
or path: `scorer prm = reward_model "Qwen/Qwen2.5-Math-PRM-7B"`.""",
    ),
    Code(
        code="TTC207",
        title="constant arithmetic has no value",
        explanation="""\
Parts of an expression that read no samples (numbers, and features defined by numbers alone) are
worked out when the policy is checked. Dividing by such a part when it is 0 gives no number: the
evaluator makes every division by zero NaN, so `mean(tokens) / (1024 - 1024)` would be NaN for
every query, and a difficulty or stop rule built on it would never mean anything. Likewise a
constant product or sum past the largest double (about 1.8e308) overflows to infinity. Fix the
constant; to scale by a length write its value (`mean(tokens) / 1024`).""",
    ),
    # ---- bins and strategies ---------------------------------------------------------------------
    Code(
        code="TTC300",
        title="bin without a strategy",
        explanation="""\
Every bin needs a strategy (`strategy NAME = majority_vote`), or an `answer` statement that
gives the default aggregation for bins without one.""",
    ),
    Code(
        code="TTC301",
        title="strategy for a bin that does not exist",
        explanation="""\
`strategy NAME = ...` must name a bin from the `bins ... as ...` statement. A policy without bins
treats the whole batch as one bin and takes its aggregation from `answer`.""",
    ),
    Code(
        code="TTC302",
        title="quantiles must be strictly increasing and inside (0, 1)",
        explanation="""\
`bins by difficulty quantiles [0.3, 0.6, 0.9] as easy, medium, hard, hopeless` splits the batch
at those quantiles of difficulty; each cut must lie strictly between 0 and 1 and be larger than
the one before.""",
    ),
    Code(
        code="TTC303",
        title="thresholds must be strictly increasing",
        explanation="""\
`bins by difficulty thresholds [0.2, 0.5] as easy, medium, hard` uses absolute values of
difficulty (stable across batches); each must be larger than the one before.""",
    ),
    Code(
        code="TTC304",
        title="number of bin names does not match the cuts",
        explanation="""\
k cuts make k + 1 bins, so `bins` needs one more name than cuts, and at least one cut.""",
    ),
    Code(
        code="TTC305",
        title="per-bin statement without bins",
        explanation="""\
`strategy NAME = ...`, per-bin sampling, per-bin stop blocks, budget scopes and fixed per-bin
allocations need a `bins` statement. Without bins, use `answer` for the aggregation and
`allocate fixed N` for a uniform allocation.""",
    ),
    Code(
        code="TTC306",
        title="bins by difficulty without a difficulty",
        explanation="""\
`bins by difficulty ...` needs a `difficulty = EXPR` statement; or bin by a feature:
`bins by agreement thresholds [...] as ...`.""",
    ),
    Code(
        code="TTC307",
        title="features need a probe",
        explanation="""\
Difficulty features are computed from the probe samples that every query gets first. Declare
the probe: `probe 4 samples`.""",
    ),
    Code(
        code="TTC308",
        title="not an aggregation",
        explanation="""\
`answer` names how to turn samples into a final answer: majority_vote, best_of_n(s),
weighted_vote(s). `keep_probe` and `single` are spending strategies, valid only per bin.""",
    ),
    # ---- budgets ------------------------------------------------------------------------------------
    Code(
        code="TTC400",
        title="budget cannot be met",
        explanation="""\
The declared limits contradict each other: every query must get at least its per-query minimum
(and the probe), so the mean per query (or the total over the batch) must allow that. Under
`allocate optimal` and `allocate per query` that minimum is at least one sample even where no
`samples per query in LO..HI` is written: a query with no sample has no answer. For a total
budget the check needs the number of queries (`ttc check --queries N`) and runs when planning.
With the batch known, the probe must also fit every limit of a bin (`total samples <= 300 for
medium`, `tokens per query <= 3000 for long`) in its worst case (probe samples of max_tokens
each, every query in that bin), since the bin is known only after the probe: the run refuses a
policy it cannot guarantee, and `ttc check --queries N` and `ttc plan` refuse it by that rule.""",
    ),
    Code(
        code="TTC401",
        title="probe larger than the per-query maximum",
        explanation="""\
The probe is spent on every query and counts against its budget, so it cannot exceed
`samples per query in LO..HI`'s upper bound or a per-query cap.""",
    ),
    Code(
        code="TTC402",
        title="empty range",
        explanation="""\
In `samples per query in LO..HI`, LO must not exceed HI. Likewise, every per-query maximum
that applies to a query (a cap `samples per query <= N`, a range's upper end, the batch's or its
bin's, `for BIN`) must be at least every per-query minimum that applies to it: `samples per query
<= 3` with `samples per query in 5..8` leaves no count, and `ttc plan` refuses the bin. Raise the
maximum or lower the minimum.""",
    ),
    Code(
        code="TTC403",
        title="allocation needs a budget",
        explanation="""\
`allocate optimal` and `allocate bandit` spend a budget, so the budget block must declare at
least one `mean ... per query <=` or `total ... <=` limit.""",
    ),
    Code(
        code="TTC404",
        title="max_tokens must be explicit",
        explanation="""\
Every policy states the longest completion it pays for: `sampling { max_tokens 1024 }`. Token
budgets, costs and truncation counts all depend on it, and backends' defaults differ.""",
    ),
    # ---- observability ---------------------------------------------------------------------------
    Code(
        code="TTC500",
        title="reads the gold answer outside an offline evaluation",
        explanation="""\
A real run cannot see whether an answer is correct. `correct` and `gold` scorers are allowed only
in a policy that declares `offline evaluation` (evaluation on logged samples with gold answers).""",
    ),
    Code(
        code="TTC501",
        title="batch-relative function in a per-query condition",
        explanation="""\
`normalize(x)` rescales x over the whole batch; stop and solved conditions are decided per query
as its samples arrive, so they cannot depend on the rest of the batch. Use the raw value.""",
    ),
    # ---- allocation and stop rules ---------------------------------------------------------------
    Code(
        code="TTC600",
        title="fixed allocation misses a bin",
        explanation="""\
`allocate fixed { easy 1  medium 8  hard 16 }` gives the samples per query of each bin
(probe included); every bin needs a number.""",
    ),
    Code(
        code="TTC601",
        title="fixed allocation smaller than the probe",
        explanation="""\
Fixed counts include the probe, which every query gets; a count below the probe size cannot be
honoured. Use `keep_probe` for bins that should get nothing beyond the probe.""",
    ),
    Code(
        code="TTC602",
        title="bandit allocation does not use bins",
        explanation="""\
`allocate bandit { ... }` decides per query, online, which queries get the next round (Zuo & Zhu):
bins, per-bin strategies and fixed counts do not apply. Use `answer` for the aggregation.""",
    ),
    Code(
        code="TTC603",
        title="missing allocate statement",
        explanation="""\
Every policy says how samples are allocated: `allocate optimal maximize accuracy`,
`allocate fixed 8`, `allocate fixed { easy 1 hard 8 }` or `allocate bandit { ... }`.""",
    ),
    Code(
        code="TTC604",
        title="bandit block incomplete",
        explanation="""\
A bandit allocation needs its round size and at least one solved rule:

    allocate bandit {
      round 2 samples
      explore entropy
      solved when top_share >= 0.75 after 4
    }""",
    ),
    Code(
        code="TTC605",
        title="keep_probe without a probe",
        explanation="""\
`keep_probe` answers from the probe samples and spends nothing more; declare `probe N samples`.""",
    ),
    # ---- added later (kept at the end; the ranges above say where each belongs) -----------------
    Code(
        code="TTC608",
        title="fixed count the bin cannot spend",
        explanation="""\
A fixed allocation (`allocate fixed N`, or a bin's count in `allocate fixed { BIN N ... }`) gives
every query of a bin exactly that many samples, probe included. The budget's per-query bounds
(`samples per query in LO..HI`, `samples per query <= HI`, the batch's and the bin's own, `for
BIN`) must allow that count: one below the minimum or above the maximum leaves the bin no count
at all, and `ttc plan` refuses it. Change the count or the bound. A `keep_probe` bin spends its
probe and a `single` bin one sample (its probe, if larger) whatever the count says, so a count
other than that is refused too: a keep_probe bin may be left out of `fixed { ... }`.""",
    ),
    Code(
        code="TTC609",
        title="a rule that needs more samples than a query gets",
        explanation="""\
A stop or solved rule cannot hold before a query has some number of samples: `after N` is checked
from N samples on, `samples >= N` holds from N, `unanimous last K` and `unanimous window K` need K
answers. When every query the rule applies to gets fewer samples than that (the budget's
per-query maximum, the batch's or the bin's, a fixed count, a keep_probe bin's probe), the rule
never holds and only looks like it stops something:

    budget { samples per query <= 32 }
    stop { when unanimous last 40 }     # never: no query has 40 samples

Lower the count, or raise the maximum.""",
    ),
    Code(
        code="TTC610",
        title="an answer-contest exploration rule with a gold solved rule",
        explanation="""\
`explore gap` and `explore entropy` order the bandit's rounds by how contested a query's answers
are: the most split votes first, where one more round is most likely to change the majority
answer. With a solved rule that reads the best gold grade so far (`solved when score(gold) >= 1`,
`solved when max(correct) >= 1`) a query retires at its first correct sample, so every query
still active has only wrong answers: how much they disagree says nothing about which query one
more sample would solve. Use `explore all` (elimination: every active query each round) or
`explore ucb` (the least-sampled first, since every active query's gold signal is 0).""",
    ),
    Code(
        code="TTC611",
        title="an answer-contest exploration rule on answers that never repeat",
        explanation="""\
`explore gap` and `explore entropy` order the bandit's rounds by how contested a query's answers
are. `ttc plan` and `ttc compare` refuse them when no calibration query gives the same answer
twice: every query's answers are then equally split (entropy ln n, gap index 1), so the rule has
nothing to rank by. Free-text or unnormalized answers often cause this; check the answer
extraction, or use `explore all` or `explore ucb`.""",
    ),
    Code(
        code="TTC309",
        title="candidate listed twice",
        explanation="""\
`strategy hard = one of [majority_vote, best_of_n(prm)]` and `when beta_confidence >= tuned
[0.9, 0.95]` list candidates the planner chooses among per bin, from their curves on the
calibration samples. Each candidate is estimated once; a repeat adds nothing and usually hides a
typo (a scorer name, a threshold meant to differ). Remove it.""",
    ),
    Code(
        code="TTC310",
        title="candidate list with one candidate",
        explanation="""\
`one of [...]` and `tuned [...]` ask the planner to choose; with one candidate there is nothing
to choose. Add candidates (`one of [majority_vote, weighted_vote(conf)]`, `tuned [0.9, 0.95,
0.99]`), or write the single strategy or threshold without the list.""",
    ),
    Code(
        code="TTC606",
        title="threshold outside the range of what it compares",
        explanation="""\
A stop or solved-rule threshold, plain (`when beta_confidence >= 0.95`) or tuned (`tuned [0.9,
0.95]`), is compared with an observable whose values are bounded: top_share, beta_confidence and
normalize lie in [0, 1]; answer_entropy, distinct, count, std, samples and prompt_nll are never
negative; clip(x, lo, hi) lies in [lo, hi]; sums, differences, products and quotients of those
and numbers lie where interval arithmetic puts them (`100 * top_share` in [0, 100]); also
through a feature defined as one of these. A threshold outside that range makes its rule hold
for every query or for none (a tuned candidate is then no real choice), and is usually a slip:
`95` for `0.95`. Keep every threshold inside the range. A strict comparison at an end of the
range never holds either (`top_share > 1`, `samples < 0`: write `>=`, `<=`, or a threshold
inside), and a condition whose two sides are numbers (`when 1 > 2`, or a feature defined as a
number) reads nothing of the query: it holds for every query as soon as it is checked, or never.""",
    ),
    Code(
        code="TTC607",
        title="tuned threshold where the planner does not choose",
        explanation="""\
The planner chooses a tuned threshold per bin from the curves it estimates on the calibration
samples, under `allocate optimal` or `allocate fixed`. A bandit allocation decides online and has
no curves, so neither its stop blocks nor its solved rules can be tuned: write one threshold.""",
    ),
    Code(
        code="TTC502",
        title="candidate the calibration table cannot serve",
        explanation="""\
`ttc plan` estimates every candidate of `one of [...]` on the calibration samples. A candidate
that reads a scorer the table has no scores for (`best_of_n(prm)` where no column holds prm's
scores; see `ttc plan --score prm=COLUMN`) cannot be estimated or run on that table. The planner
drops such candidates with a warning naming them and chooses among the rest; when no candidate
of a bin is left it refuses to plan (exit 1). Map the scorer to a column with --score, import
the scores, or remove the candidate.""",
    ),
    Code(
        code="TTC016",
        title="the policy file is empty",
        explanation="""\
The file has no statements: it is empty, or holds only blank lines and comments. A policy starts
with its header and says how to allocate samples, at the least:

    policy my_policy "what it does"
    sampling { max_tokens 1024 }
    allocate fixed 8""",
    ),
    Code(
        code="TTC612",
        title="per-query allocation without a probe",
        explanation="""\
`allocate per query` predicts each query's response curve from the features of its probe (the
first samples every query gets), then gives each query its own count. Without a probe there is
nothing to predict from: declare `probe N samples` (N >= 2 lets agreement features vary).""",
    ),
    Code(
        code="TTC613",
        title="per-query allocation without features",
        explanation="""\
`allocate per query` fits, on the calibration table, a predictor of each query's curve from its
probe's features: the policy's `feature` declarations and its `difficulty`. Declare at least one,
for example:

    feature agreement = top_share(answers)
    allocate per query maximize accuracy""",
    ),
    Code(
        code="TTC614",
        title="per-query allocation does not use bins",
        explanation="""\
`allocate per query` gives every query its own count from its own predicted curve, so bins and
per-bin strategies do not apply. Use `answer` for the aggregation (one strategy for all queries),
or `allocate optimal` to allocate per bin.""",
    ),
    Code(
        code="TTC615",
        title="a limit per-query allocation cannot keep",
        explanation="""\
`allocate per query` solves one mean samples budget (the per-query Lagrangian) within the
per-query sample bounds:

    budget {
      mean samples per query <= 8
      samples per query in 1..32
    }

Token limits, totals and per-bin limits are not priced per query; use `allocate optimal` for
them.""",
    ),
    Code(
        code="TTC616",
        title="a batch-relative feature under per-query allocation",
        explanation="""\
`allocate per query` fits its predictor on the features of the calibration table's queries and
reads a run's features as the same quantities. `normalize(x)` rescales x over the batch it is
evaluated on, so its value for the same probe depends on the rest of the batch: on the
calibration table it is relative to the calibration queries, in a run to the run's queries (a
run of 5 queries rescales over those 5), and the predictor would read it as something it did not
learn. Use the raw value: the predictor standardizes every feature with the calibration's own
mean and spread, so a feature needs no rescaling (a weighted sum of features may need constants):

    feature length = mean(tokens) / 1024      # not normalize(mean(tokens))""",
    ),
    Code(
        code="TTC311",
        title="a bin no query can reach",
        explanation="""\
`bins by KEY thresholds [t1, ...]` puts a query in the bin of the cuts at or below its key (a key
equal to a cut goes to the upper bin). Where the language knows the range of the key (top_share,
beta_confidence and normalize in [0, 1]; counts, entropy, std and prompt_nll non-negative;
clip(x, lo, hi); sums, differences, products and quotients of those and numbers, also through
features), a cut above that range, or one at or below its low end, leaves a bin that no query's
key can reach: it gets no queries (only a query whose key has no value lands in the last bin),
and its strategy and counts mean nothing. `1 - top_share(answers)` lies in [0, 1], so

    bins by difficulty thresholds [0.5, 1.5] as easy, hard, impossible

never fills `impossible`. Put the thresholds inside the range, or drop the bin.""",
    ),
)


def explain(code: str) -> str | None:
    entry = CODES.get(code.upper())
    if entry is None:
        return None
    return f"{entry.code}: {entry.title}\n\n{entry.explanation}\n"
