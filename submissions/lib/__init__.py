"""Shared building blocks for submissions: schedules, hand-written transforms, hparam checks."""
