"""No call that Windows lacks in `studio/` or `ui/` without a fallback next to it.

The Windows test mode (tests/windows_apis.py) catches such a call on the paths the tests run; this reads the
source, so a call on a path no test takes is caught too. A POSIX-only name is accepted where the same
function tests for it (`hasattr(os, "nice")`, `getattr(os, "statvfs", None)`) or the call sits in a `try`
that handles AttributeError; a POSIX-only module only inside a `try` that handles ImportError.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.windows_apis import OS_NAMES, POSIX_MODULES, SIGNAL_NAMES

ROOT = Path(__file__).resolve().parent.parent
POSIX_ONLY = {"os": set(OS_NAMES), "signal": set(SIGNAL_NAMES)}


def _handles(node: ast.Try, error: str) -> bool:
    for handler in node.handlers:
        names = []
        if handler.type is None:
            return True
        for t in (handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]):
            if isinstance(t, ast.Name):
                names.append(t.id)
        if error in names or "Exception" in names:
            return True
    return False


def _guarded_names(scope: ast.AST) -> set[tuple[str, str]]:
    """(module, name) pairs that `scope` tests for with hasattr/getattr."""
    found = set()
    for node in ast.walk(scope):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("hasattr", "getattr")
                and len(node.args) >= 2 and isinstance(node.args[0], ast.Name)
                and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
            found.add((node.args[0].id, node.args[1].value))
    return found


def audit_source(source: str, filename: str = "<source>") -> list[str]:
    """Each unguarded POSIX-only use in `source`, as `file:line: what`."""
    tree = ast.parse(source, filename)
    parents: dict[ast.AST, ast.AST] = {}
    for parent in ast.walk(tree):
        for child in ast.iter_child_nodes(parent):
            parents[child] = parent

    def enclosing(node: ast.AST) -> list[ast.AST]:
        out = []
        while node in parents:
            node = parents[node]
            out.append(node)
        return out

    def in_try(node: ast.AST, error: str) -> bool:
        return any(isinstance(a, ast.Try) and _handles(a, error) for a in enclosing(node))

    def scope_of(node: ast.AST) -> ast.AST:
        for a in enclosing(node):
            if isinstance(a, (ast.FunctionDef, ast.AsyncFunctionDef)):
                return a
        return tree

    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            module, name = node.value.id, node.attr
            if name in POSIX_ONLY.get(module, ()) and not in_try(node, "AttributeError") \
                    and (module, name) not in _guarded_names(scope_of(node)):
                problems.append(f"{filename}:{node.lineno}: {module}.{name} (not on Windows) without a fallback")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for module in modules:
                if module.split(".")[0] in POSIX_MODULES and not (in_try(node, "ImportError")
                                                                  or in_try(node, "ModuleNotFoundError")):
                    problems.append(f"{filename}:{node.lineno}: import {module} (not on Windows) outside a try")
    return problems


def test_the_audit_finds_what_it_should():
    assert audit_source("import os\nos.fchmod(3, 0o644)\n") == [
        "<source>:2: os.fchmod (not on Windows) without a fallback"]
    assert audit_source("import fcntl\n") == ["<source>:1: import fcntl (not on Windows) outside a try"]
    assert audit_source("import signal\ndef f(p):\n    p.send_signal(signal.SIGKILL)\n") == [
        "<source>:3: signal.SIGKILL (not on Windows) without a fallback"]
    assert audit_source("import os\ndef f():\n    if hasattr(os, 'nice'):\n        os.nice(5)\n") == []
    assert audit_source("try:\n    import fcntl\nexcept ImportError:\n    fcntl = None\n") == []
    assert audit_source("import os\ntry:\n    os.statvfs('.')\nexcept AttributeError:\n    pass\n") == []
    assert audit_source("import os\nos.replace('a', 'b')\nos.chmod('a', 0o644)\n") == []


def test_no_posix_only_call_without_a_fallback_in_the_app():
    problems = []
    files = sorted([*(ROOT / "studio").rglob("*.py"), *(ROOT / "ui").rglob("*.py")])
    assert len(files) > 50  # the audit really read the app
    for path in files:
        problems += audit_source(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert problems == []
