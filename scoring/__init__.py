"""Scoring: leaderboards computed only from the results database (``harness.store``).

``python -m scoring leaderboard [--workload=NAME] [--results=results/results.db]
[--out=results/leaderboard]`` prints the leaderboard and writes ``<out>.md``, ``<out>.html`` and
``<out>_<workload>.png``. ``scoring.aggregate`` holds the statistics, ``scoring.render`` the output.
The papers' published numbers and coverage map (reference_results/published/, coverage/) are read
by ``scoring.published`` and ``scoring.coverage``; ``scoring.published_board`` puts those of the
workload's own metric on the full-scale leaderboards.
"""
