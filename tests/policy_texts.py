"""Policy texts that several test files use, written once: a one-bin majority vote under a mean
budget, and an entropy-ordered bandit solved by answer agreement."""

from __future__ import annotations


def one_bin_vote(name: str, description: str) -> str:
    """Majority vote in one bin, planned under ``mean samples per query <= 4`` (1 to 8 each)."""
    return f"""\
policy {name} "{description}"

budget {{
  mean samples per query <= 4
  samples per query in 1..8
}}

sampling {{ temperature 0.7  max_tokens 1024 }}

answer majority_vote
allocate optimal maximize accuracy
"""


def entropy_bandit(name: str, description: str, *, budget: str, max_tokens: int) -> str:
    """A bandit of 2-sample rounds, entropy first, a query solved at a 75% top share after 4
    samples; ``budget`` is the budget block's body (one limit per line)."""
    limits = "\n".join(f"  {line.strip()}" for line in budget.strip().splitlines())
    return f"""\
policy {name} "{description}"
budget {{
{limits}
}}
sampling {{ temperature 0.8  max_tokens {max_tokens} }}
allocate bandit {{
  round 2 samples
  explore entropy
  solved when top_share >= 0.75 after 4
}} maximize accuracy
answer majority_vote
"""
