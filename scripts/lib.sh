# Functions shared by the experiment scripts (scripts/studies.sh, scripts/scaling_experiment.sh):
# sourced, defines functions only. Both keep their results database under results/ (kept out of
# git) and a tracked copy of it (harness/snapshot.py), from which a fresh clone continues.
# They use $PY, the project's Python (default .venv/bin/python).

# snapshot FROM TO: a consistent copy of the SQLite database FROM at TO (harness/snapshot.py).
snapshot() { "${PY:-.venv/bin/python}" -m harness.snapshot --results="$1" --out="$2"; }

# restore_if_missing DB SNAPSHOT: where DB is missing (a fresh clone) and SNAPSHOT exists, restore DB
# from it; under a lock, so that two scripts started together on one database restore once.
restore_if_missing() {
  mkdir -p "$(dirname "$1")"
  (
    flock 9
    if [[ ! -e "$1" && -e "$2" ]]; then
      echo "== $1 is missing: restoring it from $2"
      snapshot "$2" "$1"
    fi
  ) 9> "$1.restore.lock"
}
