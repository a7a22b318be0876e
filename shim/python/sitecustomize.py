"""meshlog's Python runtime, loaded by libmeshlog_preload.so.

In a Python process the preload library puts this file's directory first
on PYTHONPATH, and keeps what PYTHONPATH was in MESHLOG_PYTHONPATH ("-"
when unset, "=" and the value otherwise). Before the program starts this
file:

* puts PYTHONPATH, os.environ and sys.path back as they were, so the
  program, its imports and its children see their own environment;
* line-buffers sys.stdout where the preload library decided stdout is a
  log (bit 16 of MESHLOG_OWNER: anything but a pipe or socket to another
  program, or what the collector shows only in its log and view);
* installs the level applier: the collector writes $MESHLOG_SOCKET.level
  and signals SIGURG to the processes whose runtime asked for it (the
  preload library asks in the hello of a Python process), and the handler
  sets the root logger's level. Python runs it on the main thread between
  bytecodes; no thread is started. MESHLOG_RUNTIME=0 turns it off;
* in a process no launcher gave a rank (the workers of
  torch.multiprocessing.spawn), tells the collector its rank once it
  calls torch.distributed.init_process_group (wrapped as
  torch.distributed loads; MESHLOG_RUNTIME=0 turns it off);
* imports the sitecustomize it shadows, if any, in its place.

At start it imports nothing beyond what the interpreter has loaded at
this point (and the built-in _signal): a start costs well under a
millisecond. Telling a rank imports socket, struct and functools then.
"""
import os
import sys


def _meshlog_restore_path():
    here = os.path.dirname(os.path.abspath(__file__))
    was = os.environ.pop("MESHLOG_PYTHONPATH", None)
    if was is None:
        return here
    if was.startswith("="):
        os.environ["PYTHONPATH"] = was[1:]
    else:
        os.environ.pop("PYTHONPATH", None)
    # PYTHONPATH's first entry is ours: drop it, and only it.
    for i, p in enumerate(sys.path):
        if p and os.path.abspath(p) == here:
            del sys.path[i]
            break
    return here


def _meshlog_owner():
    """MESHLOG_OWNER's bits when this process is the owner, the process
    that registered (0 if they do not parse), else None."""
    pid, _, rest = os.environ.get("MESHLOG_OWNER", "").partition(":")
    if pid != str(os.getpid()):
        return None
    bits = rest.partition(":")[0]
    return int(bits) if bits.isdigit() else 0


def _meshlog_line_buffer(bits):
    # stdbuf -o asked for this command (shim_stdbuf in the library): it
    # leaves Python's own buffering, as it would without meshlog.
    if not bits & 16 or ("_STDBUF_O" in os.environ and "libstdbuf" in
                         os.environ.get("LD_PRELOAD", "")):
        return
    try:
        marker = os.environ.get("MESHLOG_STREAM", "").split(",")[0]
        st = os.fstat(1)
        if marker != "%d:%d" % (st.st_dev, st.st_ino):
            return
        out = sys.stdout
        # Write-through (PYTHONUNBUFFERED, -u) passes every write on now.
        if (out is not None and not out.line_buffering and
                not out.write_through):
            out.reconfigure(line_buffering=True)
    except (OSError, ValueError, AttributeError):
        pass


_meshlog_version = 0
_meshlog_pending = None

# Where launchers put the rank, in the order libmeshlog_preload.so uses.
_MESHLOG_RANK_VARS = ("MESHLOG_RANK", "RANK", "OMPI_COMM_WORLD_RANK",
                      "PMIX_RANK", "PMI_RANK", "SLURM_PROCID")


# The rank this process told the collector (_meshlog_tell_rank), if any.
_meshlog_told_rank = None


def _meshlog_rank():
    for name in _MESHLOG_RANK_VARS:
        v = os.environ.get(name, "")
        if v.isdigit():
            return int(v)
    return _meshlog_told_rank


def _meshlog_field(text, key):
    """The unsigned number after "key": in the level file, or None."""
    i = text.find('"%s":' % key)
    if i < 0:
        return None
    i += len(key) + 3
    j = i
    while j < len(text) and text[j].isdigit():
        j += 1
    return int(text[i:j]) if j > i else None


def _meshlog_parse_level(text):
    """(version, level, ranks or None) from the collector's level file,
    {"version":N,"level":L,"ranks":null|[r,...]}, without json."""
    version, level = _meshlog_field(text, "version"), \
        _meshlog_field(text, "level")
    i = text.find('"ranks":')
    if version is None or level is None or i < 0:
        raise ValueError("malformed level file")
    rest = text[i + 8:].lstrip()
    if rest.startswith("null"):
        return version, level, None
    if not rest.startswith("[") or "]" not in rest:
        raise ValueError("malformed level file")
    body = rest[1:rest.index("]")].strip()
    return version, level, [int(r) for r in body.split(",")] if body else []


class _MeshlogAfterImport:
    """Calls then(module) once the program imports the module name, right
    after the module runs: a finder first on sys.meta_path that leaves it
    when that name is asked for, and imports nothing itself."""

    def __init__(self, name, then):
        self.name, self.then = name, then

    def find_spec(self, name, path=None, target=None):
        if name != self.name:
            return None
        sys.meta_path.remove(self)
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(name, path, target) if find else None
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        run = getattr(loader, "exec_module", None)
        if run is None:
            return spec
        then = self.then

        def exec_module(module):
            del loader.exec_module
            run(module)
            then(module)
        loader.exec_module = exec_module
        return spec


def _meshlog_on_logging(logging):
    """A level that arrived before the program imported logging."""
    if _meshlog_pending is not None:
        logging.getLogger().setLevel(_meshlog_pending)


def _meshlog_apply_level(signum=None, frame=None):
    global _meshlog_version, _meshlog_pending
    if sys.is_finalizing():
        return
    try:
        with open(os.environ["MESHLOG_SOCKET"] + ".level") as f:
            version, level, ranks = _meshlog_parse_level(f.read(4096))
    except (KeyError, OSError, ValueError):
        return
    # A level for other ranks is not taken: read again once this
    # process tells its rank (_meshlog_tell_rank), it may be its.
    if version <= _meshlog_version or (ranks is not None and
                                       _meshlog_rank() not in ranks):
        return
    _meshlog_version = version
    logging = sys.modules.get("logging")
    if logging is not None and hasattr(logging, "getLogger"):
        logging.getLogger().setLevel(level)
        return
    if _meshlog_pending is None:
        sys.meta_path.insert(0, _MeshlogAfterImport("logging",
                                                    _meshlog_on_logging))
    _meshlog_pending = level


# The level applier is installed: levels reach this process.
_meshlog_levels = False


def _meshlog_runtime(bits):
    # Bit 32: the preload library told the collector to signal us.
    if not bits & 32 or "MESHLOG_SOCKET" not in os.environ:
        return
    try:
        import _signal
        if _signal.getsignal(_signal.SIGURG) not in (_signal.SIG_DFL, None):
            return
        _signal.signal(_signal.SIGURG, _meshlog_apply_level)
    except (ImportError, ValueError, OSError, AttributeError):
        return
    global _meshlog_levels
    _meshlog_levels = True
    # A level set before this process started applies from the start.
    if os.path.exists(os.environ["MESHLOG_SOCKET"] + ".level"):
        _meshlog_apply_level()


def _meshlog_tell_rank(c10d):
    """Tell the collector the rank and world size of the process group
    just made, on a connection of its own to a collector of our user or
    root, and wait (1 s at most) for its answer. Level changes for that
    rank apply here from then on, and one made before, now. Never
    raises."""
    global _meshlog_told_rank
    try:
        rank, world = c10d.get_rank(), c10d.get_world_size()
        _meshlog_told_rank = rank
        import socket
        import struct
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(1.0)
            s.connect(_meshlog_socket)
            uid = struct.unpack("3i", s.getsockopt(
                socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]
            if uid in (0, os.getuid()):
                s.sendall(b'{"type":"rank","rank":%d,"world_size":%d}\n'
                          % (rank, world))
                # Answered once the collector labels us: lines written
                # after this are the rank's.
                s.recv(64)
        finally:
            s.close()
        if _meshlog_levels:
            _meshlog_apply_level()
    except Exception:
        pass


def _meshlog_on_c10d(c10d):
    """Wrap torch.distributed's init_process_group (before torch.distributed
    imports it by name): once a group is made, the collector hears the
    rank, once."""
    init = getattr(c10d, "init_process_group", None)
    if not callable(init):
        return
    told = []

    def init_process_group(*args, **kwargs):
        made = init(*args, **kwargs)
        if not told:
            told.append(True)
            _meshlog_tell_rank(c10d)
        return made
    try:
        import functools
        functools.update_wrapper(init_process_group, init)
    except (ImportError, AttributeError):
        pass
    c10d.init_process_group = init_process_group


_meshlog_socket = None


def _meshlog_rank_teller(owner):
    """A registered process that no launcher gave a rank (the workers of
    torch.multiprocessing.spawn, which pass it as an argument) learns its
    rank when it joins a process group: the collector is told then."""
    global _meshlog_socket
    _meshlog_socket = os.environ.get("MESHLOG_SOCKET")
    if (owner is None or not _meshlog_socket or
            os.environ.get("MESHLOG_RUNTIME") == "0" or
            _meshlog_rank() is not None):
        return
    sys.meta_path.insert(0, _MeshlogAfterImport(
        "torch.distributed.distributed_c10d", _meshlog_on_c10d))


def _meshlog_chain(here):
    """Import the sitecustomize this file shadows. The program gets that
    one, or none (its ImportError, which site ignores, ends this import
    too), as it would without meshlog; the handler keeps this file's
    functions alive."""
    del sys.modules[__name__]
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path
                   if os.path.abspath(p or os.curdir) != here]
    try:
        import sitecustomize  # noqa: F401
    finally:
        sys.path[:] = saved


_meshlog_bits = _meshlog_owner()
_meshlog_line_buffer(_meshlog_bits or 0)
_meshlog_runtime(_meshlog_bits or 0)
_meshlog_rank_teller(_meshlog_bits)
_meshlog_chain(_meshlog_restore_path())
