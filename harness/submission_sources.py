"""The source files a submission's code comes from: its module(s) and, transitively, every module of
the `submissions` package they import. harness/submission_loader.source_hash hashes them: the row
id of every run of the submission (an edited submission is another leaderboard row).

Why follow the imports rather than hash all of submissions/lib/ (as before): with all of lib, an
edit of any one lib module changed the id of every built-in submission, including those that never
import it. Why parse them with `ast` rather than ask the import system (sys.modules after the
import): it is explicit and static, the same answer whatever ran before, without importing
anything, and it sees imports inside functions too (a module imported lazily is as much the
submission's code as one imported at the top).

What is followed: ``import submissions.a.b``, ``from submissions.a import b`` (b a module or a name
of submissions/a/__init__.py) and relative imports inside the package, each to the file it loads
(``submissions/a/b.py`` or ``submissions/a/b/__init__.py``), with the ``__init__.py`` of every
package on the way (importing submissions.lib.masks runs submissions/__init__.py and
submissions/lib/__init__.py). What is not: imports of other packages (jax, optax, the harness's
spec: not the submission's code), dynamic imports (importlib.import_module(name)), and a user's
helper modules outside submissions/ (a user's module is hashed with the submissions modules it
imports, not with files of its own it imports).
"""

from __future__ import annotations

import ast
import os

PACKAGE = "submissions"


def module_files(module: str, submissions_dir: str) -> list[str]:
    """The files importing the dotted `module` (under PACKAGE) runs, those that exist: the
    ``__init__.py`` of each package on its path, then the module's own file (``x.py`` or
    ``x/__init__.py``). Empty for a name that is no module there (a class or function)."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return []
    root = os.path.dirname(submissions_dir)
    files = [os.path.join(root, *parts[:k], "__init__.py") for k in range(1, len(parts))]
    own = [os.path.join(root, *parts) + ".py", os.path.join(root, *parts, "__init__.py")]
    found = [f for f in own if os.path.isfile(f)]
    if not found:
        return []
    return [f for f in files if os.path.isfile(f)] + found[:1]


def _package_of(path: str, submissions_dir: str) -> list[str] | None:
    """The dotted package a file under submissions_dir belongs to, as parts; None outside it."""
    directory = os.path.dirname(os.path.abspath(path))
    root = os.path.dirname(submissions_dir)
    if os.path.commonpath([directory, submissions_dir]) != submissions_dir:
        return None
    return os.path.relpath(directory, root).split(os.sep)


def imported_modules(path: str, submissions_dir: str) -> set[str]:
    """Dotted names under PACKAGE that the file at `path` imports (anywhere in it), each ``from a
    import b`` as both ``a`` and ``a.b`` (module_files keeps those that are modules)."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: only meaningful inside the package
                package = _package_of(path, submissions_dir)
                if package is None or node.level > len(package):
                    continue
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return {n for n in names if n == PACKAGE or n.startswith(PACKAGE + ".")}


def source_files(paths: list[str], submissions_dir: str) -> list[str]:
    """`paths` and every file of the submissions package they import, transitively, sorted."""
    seen: set[str] = set()
    todo = [os.path.abspath(p) for p in paths]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for module in imported_modules(path, submissions_dir):
            todo.extend(f for f in module_files(module, submissions_dir) if f not in seen)
    return sorted(seen)
