"""Policies side by side against uniform allocation and the oracles (``ttc compare``).

:mod:`.baselines` (uniform and the static and dynamic oracles from exact curves), :mod:`.runs`
(plan on calibration queries, replay on evaluation queries), :mod:`.comparison` (the rows, their
CIs and verdicts), :mod:`.render` (table, markdown, PNG).
"""
