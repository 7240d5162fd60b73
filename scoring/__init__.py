"""Scoring: leaderboards computed only from the results database (``harness.store``).

``python -m scoring leaderboard [--workload=NAME] [--results=results/results.db]
[--out=results/leaderboard]`` prints the leaderboard and writes ``<out>.md``, ``<out>.html`` and
``<out>_<workload>.png``. ``scoring.aggregate`` holds the statistics, ``scoring.render`` the output.
"""
