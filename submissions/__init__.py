"""Optimizer submissions: one directory per update rule (submission.py + search_space.json)."""
