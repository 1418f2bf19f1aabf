"""git's index rule: a fact remembered about a file (its digest, its parsed answers) holds while
the file's size, modification and change times and inode are those recorded with it.

The change time moves with every write and no program can set it back. A file changed within
:data:`RACY_SECONDS` of being read is never recorded: two writes within one clock tick look
alike, so a later one could keep the old signature.
"""

from __future__ import annotations

import os
import time

RACY_SECONDS = 2


def signature(st: os.stat_result) -> list[int]:
    """What must be unchanged for a remembered fact about the file to hold."""
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def settled(st: os.stat_result) -> bool:
    """Whether the file was last changed long enough ago that its signature may be recorded."""
    return time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > RACY_SECONDS * 10**9
