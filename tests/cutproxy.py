"""A TCP forwarder on loopback that a test or a benchmark can cut and
restore, to take a relay's link away without touching the relay."""
import select
import socket
import threading
import time


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on just now."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class CutProxy:
    """Forwards 127.0.0.1:port to target, both ways, until cut."""

    def __init__(self, target):
        self.target = target
        # What went towards the target, for tests that look at the wire;
        # flip: change one byte of what goes there next (a forgery).
        self.seen = bytearray()
        self.flip = False
        self.pairs = []
        self.lock = threading.Lock()
        self.stopped = False
        self.listener = self._listen(0)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _listen(self, port):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(16)
        return s

    def _run(self):
        while not self.stopped:
            with self.lock:
                socks = [p for pair in self.pairs for p in pair]
                if self.listener is not None:
                    socks.append(self.listener)
            if not socks:
                time.sleep(0.05)
                continue
            for s in select.select(socks, [], [], 0.05)[0]:
                with self.lock:
                    if s is self.listener:
                        c, _ = s.accept()
                        try:
                            u = socket.create_connection(self.target)
                        except OSError:
                            c.close()   # the target is gone: so is the link
                            continue
                        self.pairs.append((c, u))
                        continue
                    pair = next((p for p in self.pairs if s in p), None)
                if pair is None:
                    continue
                other = pair[1] if s is pair[0] else pair[0]
                try:
                    data = s.recv(262144)
                    if data:
                        if s is pair[0]:
                            self.seen += data
                            if self.flip and len(data) > 8:
                                self.flip = False
                                data = (data[:8] + bytes([data[8] ^ 1]) +
                                        data[9:])
                        other.sendall(data)
                        continue
                except OSError:
                    pass
                self._drop(pair)

    def _drop(self, pair):
        with self.lock:
            if pair in self.pairs:
                self.pairs.remove(pair)
        for s in pair:
            s.close()

    def cut(self):
        """Close every connection and stop listening."""
        with self.lock:
            pairs, self.pairs = self.pairs, []
            self.listener.close()
            self.listener = None
        for pair in pairs:
            for s in pair:
                s.close()

    def restore(self):
        """Listen on the same port again."""
        with self.lock:
            self.listener = self._listen(self.port)

    def stop(self):
        self.stopped = True
        self.thread.join()
        if self.listener is not None:
            self.listener.close()
        for pair in self.pairs:
            for s in pair:
                s.close()
