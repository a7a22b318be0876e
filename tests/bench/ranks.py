"""Many ranks in one process, for the burst benchmark: registers N sources
(ranks FIRST .. FIRST+N-1 of WORLD) with the collector at SOCK by hand,
each with a pipe of its own and /dev/null as its destination, prints
"ready", waits for a line on stdin, then writes LINES NCCL-style lines
into every pipe and closes them.

    python3 ranks.py SOCK FIRST N WORLD LINES
"""
import json
import os
import socket
import sys


def register(sock, rank, world, devnull):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock)
    f = s.makefile("rb")
    hello = {"type": "hello", "proto": 2, "pid": os.getpid(),
             "ppid": os.getppid(), "uid": os.getuid(), "host": "bench",
             "start_us": 0, "argv": ["ranks.py"], "rank": rank,
             "local_rank": rank % 8, "world_size": world,
             "streams": [{"name": "stdout", "tty": False}]}
    s.sendall(json.dumps(hello).encode() + b"\n")
    if json.loads(f.readline())["type"] != "accept":
        sys.exit("rank %d: not accepted" % rank)
    r, w = os.pipe()
    socket.send_fds(s, [b'{"type":"streams"}\n'], [r, devnull])
    if json.loads(f.readline())["type"] != "welcome":
        sys.exit("rank %d: no welcome" % rank)
    os.close(r)
    s.close()
    return w


def main():
    sock, first, n, world, lines = (sys.argv[1], *map(int, sys.argv[2:6]))
    devnull = os.open(os.devnull, os.O_WRONLY)
    pipes = [(first + i, register(sock, first + i, world, devnull))
             for i in range(n)]
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(lines):
        for rank, w in pipes:
            os.write(w, b"node%d:%d:%d [%d] NCCL INFO Channel %02d/32 : "
                     b"%d[%d] -> %d[%d] via P2P/IPC\n" % (
                         rank // 8, 1000 + rank, 1000 + rank, rank % 8,
                         i % 32, rank, rank % 8, (rank + 1) % world,
                         (rank + 1) % 8))
    for _, w in pipes:
        os.close(w)


if __name__ == "__main__":
    main()
