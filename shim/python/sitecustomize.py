"""meshlog's Python runtime, loaded by libmeshlog_preload.so.

The preload library puts this file's directory first on PYTHONPATH. It
does two things, then imports the sitecustomize it shadows, if any:

* Line-buffers sys.stdout when fd 1 is a meshlog pipe (unless
  MESHLOG_BUFFERING=keep). Python block-buffers stdout on a pipe, so lines
  would sit in the process until a crash loses them; unbuffered output
  (PYTHONUNBUFFERED) would instead split one print() into several writes
  that interleave across forked workers.
* Applies level changes from the collector (meshlogctl set-mode --level):
  the collector writes $MESHLOG_SOCKET.level and sends SIGURG, and a
  Python signal handler sets the root logger's level. Python runs it on
  the main thread between bytecodes: a process blocked in C applies the
  change when it returns to Python, and never during finalisation. No
  thread is started. A program with its own SIGURG handler keeps it (and
  gets no level changes); MESHLOG_RUNTIME=0 turns this part off.
"""
import os
import sys


def _meshlog_line_buffer():
    if os.environ.get("MESHLOG_BUFFERING") == "keep":
        return
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


_meshlog_version = 0

# Where launchers put the rank, in the order libmeshlog_preload.so uses.
_MESHLOG_RANK_VARS = ("MESHLOG_RANK", "RANK", "OMPI_COMM_WORLD_RANK",
                      "PMIX_RANK", "PMI_RANK", "SLURM_PROCID")


def _meshlog_rank():
    for name in _MESHLOG_RANK_VARS:
        v = os.environ.get(name, "")
        if v.isdigit():
            return int(v)
    return None


def _meshlog_apply_level(signum=None, frame=None):
    global _meshlog_version
    if sys.is_finalizing():
        return
    try:
        import json
        with open(os.environ["MESHLOG_SOCKET"] + ".level") as f:
            want = json.load(f)
        version, level = int(want["version"]), int(want["level"])
        ranks = want.get("ranks")
    except (KeyError, OSError, ValueError, TypeError):
        return
    if version <= _meshlog_version:
        return
    _meshlog_version = version
    if ranks is not None and _meshlog_rank() not in ranks:
        return
    import logging
    logging.getLogger().setLevel(level)


def _meshlog_runtime():
    if os.environ.get("MESHLOG_RUNTIME") == "0" or \
            "MESHLOG_SOCKET" not in os.environ:
        return
    try:
        import signal
        if signal.getsignal(signal.SIGURG) not in (signal.SIG_DFL, None):
            return
        signal.signal(signal.SIGURG, _meshlog_apply_level)
    except (ValueError, OSError, AttributeError):
        return
    # A level set before this process started applies from the start.
    if os.path.exists(os.environ["MESHLOG_SOCKET"] + ".level"):
        _meshlog_apply_level()


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
_meshlog_runtime()
_meshlog_chain()
