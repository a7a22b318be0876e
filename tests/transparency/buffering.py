"""How stdout is buffered: Python's sys.stdout and C stdio's stdout (the
line-buffered flag of glibc's FILE, through ctypes)."""
import ctypes
import sys

libc = ctypes.CDLL(None)
libc.__flbf.argtypes = [ctypes.c_void_p]
libc.fputs.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
libc.fflush.argtypes = [ctypes.c_void_p]
stdout = ctypes.c_void_p.in_dll(libc, "stdout")
# glibc picks the buffering of a stream at its first write.
libc.fputs(b"C stdio\n", stdout)
line_buffered = bool(libc.__flbf(stdout))
libc.fflush(stdout)
print("python line_buffering", sys.stdout.line_buffering)
print("C stdout line-buffered", line_buffered)
