"""A broken submission: calls sys.exit(0) at import (a CI script would read success)."""
import sys

sys.exit(0)
