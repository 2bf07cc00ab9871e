"""The only code that touches ctypes, libc and the bpf() syscall."""

from . import constants as constants
