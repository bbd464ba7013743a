"""What the config-script worker does to its own process so that no script reaches the
network and nothing a script starts outlives it (Linux; each step is skipped where the
host does not allow it, and :func:`isolate` says what was achieved).

- :func:`die_with_parent`: the kernel kills the process when its parent ends
  (``PR_SET_PDEATHSIG``), so a worker never outlives a jetforge that was killed.
- :func:`isolate`: a network namespace of its own (``unshare(CLONE_NEWNET)``, with a user
  namespace where the process lacks ``CAP_SYS_ADMIN``), holding only a loopback device
  that is down: no connection leaves it, by any means (``socket``, ``_socket``, ``ctypes``,
  another program). With it a PID namespace, whose first process (the serving worker)
  takes every process of the namespace with it when it ends.
- :func:`end_children`: after each script, every process it left behind is killed, even one
  that started a session of its own (the worker is their reaper: the first process of
  its PID namespace, or a ``PR_SET_CHILD_SUBREAPER``).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWPID = 0x20000000
_CLONE_NEWNET = 0x40000000


@dataclass(frozen=True, slots=True)
class Isolation:
    """What :func:`isolate` achieved: a network namespace of its own (no network at all)
    and a PID namespace (its next child is the namespace's first process)."""

    network: bool = False
    processes: bool = False


@functools.cache
def _function(name: str) -> Callable[..., int] | None:
    """A libc function (looked up once: a forked process finds it ready), or None."""
    try:
        return getattr(ctypes.CDLL(None, use_errno=True), name, None)
    except OSError:
        return None


def _call(name: str, *arguments: int) -> bool:
    """Call a libc function that returns 0 on success; False where it is missing or fails."""
    function = _function(name)
    return function is not None and function(*arguments) == 0


def die_with_parent(parent: int) -> None:
    """Have the kernel kill this process when its parent ends; end now when the parent
    (``parent``, the id it had) is gone already."""
    _call("prctl", _PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


def become_reaper() -> None:
    """Take in the orphans of this process's descendants (so :func:`end_children` finds
    them, even those that left the process group)."""
    _call("prctl", _PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def isolate() -> Isolation:
    """Move this (single-threaded) process into namespaces of its own: network and PID
    where allowed, else network only, else none. Without ``CAP_SYS_ADMIN`` a user
    namespace comes first, mapping the user's own ids (nothing else changes for files)."""
    uid, gid = os.getuid(), os.getgid()
    attempts = [_CLONE_NEWNET | _CLONE_NEWPID, _CLONE_NEWNET]
    with_user = [flags | _CLONE_NEWUSER for flags in attempts]
    for flags in [*attempts, *with_user] if uid == 0 else [*with_user, *attempts]:
        if _call("unshare", flags):
            if flags & _CLONE_NEWUSER:
                _map_ids(uid, gid)
            return Isolation(network=True, processes=bool(flags & _CLONE_NEWPID))
    return Isolation()


def _map_ids(uid: int, gid: int) -> None:
    """Be the same user inside the new user namespace as outside."""
    with contextlib.suppress(OSError):
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
        Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")


def end_children(*, first_of_namespace: bool) -> None:
    """Kill every process this one has left (children, and the orphans it reaps) and
    collect them. ``first_of_namespace``: this is the first process of its own PID
    namespace, where one signal reaches all the others."""
    first_of_namespace = first_of_namespace and os.getpid() == 1
    while True:
        if first_of_namespace:
            with contextlib.suppress(OSError):
                os.kill(-1, signal.SIGKILL)  # every process of the namespace but this one
        else:
            for child in _children():
                with contextlib.suppress(OSError):
                    os.kill(child, signal.SIGKILL)
        try:
            os.waitpid(-1, 0)  # an orphan of what died is a child now: the next round
        except ChildProcessError:
            return


def _children() -> list[int]:
    """The ids of this process's children (its only thread's: the worker has one)."""
    try:
        listed = Path(f"/proc/self/task/{os.getpid()}/children").read_text()
        return [int(number) for number in listed.split()]
    except OSError:  # a kernel without that file: look at every process's parent
        found: list[int] = []
        me = os.getpid()
        try:
            entries = list(os.scandir("/proc"))
        except OSError:  # no /proc: nothing to find (and no subreaper to have found it)
            return found
        for entry in entries:
            if entry.name.isdigit():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    stat = Path(entry.path, "stat").read_text()
                    if int(stat.rsplit(")", 1)[1].split()[1]) == me:
                        found.append(int(entry.name))
        return found
