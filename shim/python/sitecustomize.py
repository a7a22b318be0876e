"""meshlog: line-buffer sys.stdout when libmeshlog_preload.so captured it.

The preload library puts this file's directory first on PYTHONPATH. Python
block-buffers stdout on a pipe, so lines would sit in the process until a
crash loses them; unbuffered output (PYTHONUNBUFFERED) would instead split
one print() into several writes that interleave across forked workers.
Line buffering keeps both: one write per line, nothing held back.
The sitecustomize this file shadows, if any, is imported afterwards.
"""
import os
import sys


def _meshlog_line_buffer():
    try:
        marker = os.environ.get("MESHLOG_STREAM", "").split(",")[0]
        st = os.fstat(1)
        if marker != "%d:%d" % (st.st_dev, st.st_ino):
            return
        out = sys.stdout
        if out is not None and not out.line_buffering:
            out.reconfigure(line_buffering=True)
    except (OSError, ValueError, AttributeError):
        pass


def _meshlog_chain():
    here = os.path.dirname(os.path.abspath(__file__))
    me = sys.modules.pop(__name__)
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path
                   if os.path.abspath(p or os.curdir) != here]
    try:
        import sitecustomize  # noqa: F401  (the one this file shadows)
    except ImportError as e:
        if e.name != "sitecustomize":
            raise
    finally:
        sys.path[:] = saved
        # The import that is running this file expects to find it here.
        sys.modules[__name__] = me


_meshlog_line_buffer()
_meshlog_chain()
