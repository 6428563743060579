"""glibc's allocator told to keep a request's large buffers for the next request instead of handing them
back to the kernel after each one.

A 3 MB JSON body passes through buffers of its size: the body as it arrives, simdjson's padded copy and
its parse tape, the decoded array. glibc serves each from fresh `mmap`ed pages (above its 128 KiB
threshold, which it raises only after a free) or grows the heap and trims it again on free, so every
request pays a page fault per 4 KiB it touches: on MobileNetV2's V2 JSON request, a third of the time
the server spent. With the thresholds raised, the memory a request freed is reused by the next one.
The heap then stays at its busiest size rather than shrinking between requests; what bounds that size
is unchanged (`TWINSERVE_MAX_BUFFERED_BYTES` and the model's shape). Outside glibc this does nothing.
"""

from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD = -1  # <malloc.h>: free heap kept at the top before it is given back
M_MMAP_THRESHOLD = -3  # <malloc.h>: requests at least this large get their own mapping
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's ceiling for it on 64-bit (HEAP_MAX_SIZE / 2)
TRIM_THRESHOLD = 128 * 1024 * 1024


def keep_request_buffers() -> bool:
    """Raise both thresholds in this process; whether the allocator took them (False outside glibc).
    `mallopt` is looked up among the symbols the interpreter already has (libc's among them), not by
    `ctypes.util.find_library`, whose imports and `ldconfig` run were ~5 ms of a Lambda cold start."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
