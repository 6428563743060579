"""The allocator keeps a request's large buffers: after `keep_request_buffers`, a block of megabytes comes
from the heap (kept and reused after a free) instead of a mapping of its own (unmapped on free, faulted in
afresh by the next request). Each case runs in a fresh interpreter, so this one's allocator is untouched."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import ctypes, sys
from serving.allocator import keep_request_buffers

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
        "keepcost")]

if sys.argv[1] == "keep":
    assert keep_request_buffers() is True
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = (ctypes.c_void_p,)
before = libc.mallinfo2().hblkhd
block = libc.malloc(8 * 1024 * 1024)
print(libc.mallinfo2().hblkhd - before)
libc.free(block)
"""


@pytest.mark.parametrize(("mode", "mapped"), [("default", True), ("keep", False)])
def test_megabyte_blocks_come_from_the_heap_once_buffers_are_kept(mode: str, mapped: bool) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True, timeout=60
    )
    mapped_bytes = int(result.stdout)
    assert (mapped_bytes >= 8 * 1024 * 1024) is mapped, mapped_bytes
