"""Flax modules whose every parameter declares its harness.spec.ParamType."""
