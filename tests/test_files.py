"""Safe reads and atomic writes (jetforge.host.files)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from jetforge.host.files import (
    UnreadableFileError,
    held,
    read_regular,
    read_regular_text,
    write_atomic,
)


def test_a_regular_file_is_read_and_a_symlink_to_one_followed(tmp_path: Path) -> None:
    target = tmp_path / "lock.json"
    target.write_text("{}")
    (tmp_path / "link").symlink_to(target)
    assert read_regular(tmp_path / "link", "lockfile") == b"{}"


def test_a_fifo_without_writer_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    result: list[BaseException] = []

    def read() -> None:
        try:
            read_regular(fifo, "x")
        except UnreadableFileError as error:
            result.append(error)

    reader = threading.Thread(target=read)
    reader.start()
    reader.join(5)
    assert not reader.is_alive()
    assert "is a FIFO, not a regular file (expected a x)" in str(result[0])


@pytest.mark.parametrize(
    ("path", "kind"), [("/dev/zero", "a character device"), ("/", "a directory")]
)
def test_devices_and_directories_are_refused(path: str, kind: str) -> None:
    with pytest.raises(UnreadableFileError, match=f"is {kind}, not a regular file"):
        read_regular(path, "lockfile")


def test_a_file_over_the_bound_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"x" * 101)
    assert read_regular(big, "manifest", limit=101) == b"x" * 101
    with pytest.raises(UnreadableFileError, match="is larger than 100 bytes"):
        read_regular(big, "manifest", limit=100)


def test_text_that_is_not_utf8_is_one_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_bytes(b"ok\xff")
    with pytest.raises(UnreadableFileError, match="not UTF-8 text"):
        read_regular_text(bad, "lockfile")


def test_a_missing_file_names_the_reason(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFileError, match="No such file or directory"):
        read_regular(tmp_path / "absent", "lockfile")


def test_write_atomic_replaces_whole_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("old")
    write_atomic(path, b"new", mode=0o600)
    assert path.read_bytes() == b"new"
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_write_atomic_failing_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("old")

    with pytest.raises(TypeError):
        write_atomic(path, "not bytes", mode=0o600)  # type: ignore[arg-type]
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_held_makes_a_second_holder_wait_and_says_who_holds_it(tmp_path: Path) -> None:
    lock = tmp_path / "locks" / "final.lock"
    told: list[str] = []
    events: list[str] = []
    with held(lock, told.append):
        waiter = threading.Thread(
            target=lambda: held_then(lock, lambda: events.append("second"), told.append)
        )
        waiter.start()
        waiter.join(0.5)
        assert waiter.is_alive()  # waiting while the first holds it
        events.append("first done")
    waiter.join(5)
    assert events == ["first done", "second"]
    assert told == [str(os.getpid())]


def held_then(lock: Path, action: Callable[[], None], on_wait: Callable[[str], None]) -> None:
    with held(lock, on_wait, poll=0.05):
        action()
