"""What a Python program sees of its environment: PYTHONPATH, sys.path,
which sitecustomize it got and whether meshlog's module is importable.
Paths under $OUT (a folder per run) are printed relative to it."""
import os
import sys


def show(p):
    out = os.environ.get("OUT")
    return p.replace(out, "$OUT") if out and isinstance(p, str) else p


print("PYTHONPATH", repr(show(os.environ.get("PYTHONPATH"))))
print("sys.path", [show(p) for p in sys.path[1:]])
print("prefix", show(sys.prefix), "venv", sys.prefix != sys.base_prefix)
print("meshlog variables", sorted(k for k in os.environ
                                  if k.startswith("MESHLOG_PYTHON")))
mod = sys.modules.get("sitecustomize")
print("sitecustomize", getattr(mod, "__file__", None))
try:
    import meshlog  # noqa: F401
    print("import meshlog: yes")
except ImportError:
    print("import meshlog: no")
