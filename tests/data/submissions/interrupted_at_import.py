"""A submission whose import is interrupted (as by Ctrl-C while it runs)."""
raise KeyboardInterrupt
