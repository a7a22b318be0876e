"""meshlog's Python levers: drive a running meshlog-collector.

    import logging, meshlog
    meshlog.logging_option(stream_to_client=True, aggregate_window_sec=0.25,
                           level=logging.INFO)
    meshlog.flush(timeout=3.0)      # every line written so far is logged

The same requests as meshlogctl(1), over the collector's socket
($MESHLOG_SOCKET, else the default path). Under IPython, logging_option()
also registers a flush at the end of every cell, so a cell's output is in
the log (and on the console) before the next prompt.
"""
import json
import logging
import os
import socket as _socket

__all__ = ["MeshlogError", "logging_option", "flush", "status",
           "register_cell_flush", "socket_path"]

_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40,
           "CRITICAL": 50}


class MeshlogError(RuntimeError):
    """No collector answered, or it refused the request."""


def socket_path():
    """The collector's socket, as the preload library finds it."""
    if os.environ.get("MESHLOG_SOCKET"):
        return os.environ["MESHLOG_SOCKET"]
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if xdg.startswith("/"):
        return os.path.join(xdg, "meshlog", "collector.sock")
    return "/tmp/meshlog-%d/collector.sock" % os.getuid()


def _request(req, timeout, path=None):
    path = path or socket_path()
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(json.dumps(req).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                raise MeshlogError("collector at %s closed the connection"
                                   % path)
            data += chunk
    except OSError as e:
        raise MeshlogError("no collector at %s: %s" % (path, e)) from None
    finally:
        s.close()
    reply = json.loads(data)
    if reply.get("type") == "error":
        raise MeshlogError(reply.get("message", "refused"))
    return reply


def _level(level):
    if isinstance(level, str) and level.upper() in _LEVELS:
        return _LEVELS[level.upper()]
    if isinstance(level, int) and not isinstance(level, bool) and \
            0 <= level <= 50:
        return level
    raise ValueError("level must be DEBUG..CRITICAL or 0-50, not %r"
                     % (level,))


_UNSET = object()


def _ranks(ranks, what):
    try:
        out = sorted({int(r) for r in ranks})
    except (TypeError, ValueError):
        raise ValueError("%s must be ranks, not %r" % (what, ranks))
    if any(r < 0 for r in out):
        raise ValueError("%s must be ranks, not %r" % (what, ranks))
    return out


def logging_option(stream_to_client=_UNSET, aggregate_window_sec=_UNSET,
                   level=_UNSET, *, ranks=None, console_level=_UNSET,
                   console_ranks=_UNSET, socket=None, timeout=3.0):
    """Set the console view, and the level programs log at.

    What the console shows (the JSON log always records every line):
    stream_to_client, on or off; aggregate_window_sec, seconds, 0 or None
    for off; console_level, the lowest severity shown (0: all);
    console_ranks, the only ranks shown (None: all).

    level: the level the Python processes' root logger (and syslog's
    mask) gets, on every rank or on ranks: lines below it are no longer
    written, and the JSON log records a set_level event.

    What is not given stays as it is. Returns the collector's new mode.
    """
    req = {"type": "set_mode"}
    if stream_to_client is not _UNSET:
        req["stream_to_client"] = bool(stream_to_client)
    if aggregate_window_sec is not _UNSET:
        if aggregate_window_sec is not None and (
                isinstance(aggregate_window_sec, bool) or
                not isinstance(aggregate_window_sec, (int, float)) or
                not 0 <= aggregate_window_sec <= 3600):
            raise ValueError("aggregate_window_sec must be 0-3600 or None")
        req["aggregate_window_sec"] = (
            "off" if aggregate_window_sec is None else aggregate_window_sec)
    if console_level is not _UNSET:
        req["console_level"] = _level(console_level)
    if console_ranks is not _UNSET:
        req["console_ranks"] = (None if console_ranks is None else
                                _ranks(console_ranks, "console_ranks"))
    setlevel = None
    if level is not _UNSET:
        setlevel = {"type": "set_level", "level": _level(level)}
        if ranks is not None:
            setlevel["ranks"] = _ranks(ranks, "ranks")
    elif ranks is not None:
        raise ValueError("ranks limits a level: give level too")
    mode = None
    if len(req) > 1 or setlevel is None:
        mode = _request(req, timeout, socket)["mode"]
    if setlevel is not None:
        mode = _request(setlevel, timeout, socket)["mode"]
    register_cell_flush()
    return mode


def flush(timeout=3.0, *, socket=None):
    """Run the collector's flush barrier; returns its reply.

    When it returns, every line any process wrote before the call is in
    the JSON log and the console. The reply's "incomplete" lists sources
    the barrier could not finish within timeout.
    """
    return _request({"type": "flush", "timeout_ms": int(timeout * 1000)},
                    timeout + 10, socket)


def status(*, socket=None, timeout=3.0):
    """The collector's status: its mode and every source."""
    return _request({"type": "status"}, timeout, socket)


_registered = set()


def register_cell_flush(ipython=None, timeout=3.0):
    """Flush at the end of every IPython cell; no-op outside IPython."""
    if ipython is None:
        try:
            ipython = get_ipython()  # noqa: F821 (defined under IPython)
        except NameError:
            return False
    if ipython is None or id(ipython) in _registered:
        return False

    def _cell_end(*args):
        try:
            flush(timeout)
        except MeshlogError as e:
            logging.getLogger("meshlog").warning("cell-end flush: %s", e)

    ipython.events.register("post_run_cell", _cell_end)
    _registered.add(id(ipython))
    return True
