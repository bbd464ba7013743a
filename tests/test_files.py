"""Safe reads and atomic writes (jetforge.host.files)."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from jetforge.host.files import (
    UnreadableFileError,
    UnwritableFileError,
    atomic_output,
    held,
    named_output,
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


def write_then_fail(path: Path) -> None:
    with atomic_output(path) as out:
        out.write(b"half")
        raise RuntimeError


def test_atomic_output_replaces_only_when_the_block_ends_well(tmp_path: Path) -> None:
    path = tmp_path / "bundle.tar"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        write_then_fail(path)
    assert path.read_text() == "old"
    with atomic_output(path, 0o640) as out:
        out.write(b"new")
    assert path.read_text() == "new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["bundle.tar"]


def test_named_output_refuses_a_fifo_before_the_block_and_without_through(tmp_path: Path) -> None:
    fifo = tmp_path / "out"
    os.mkfifo(fifo)
    ran: list[str] = []
    with pytest.raises(UnwritableFileError, match="is a FIFO that nobody reads"):  # noqa: SIM117
        with named_output(fifo, "bundle"):
            ran.append("block")
    with pytest.raises(UnwritableFileError, match=r"is a FIFO \(name a regular file"):  # noqa: SIM117
        with named_output(fifo, "bake output", through=False):
            ran.append("block")
    assert ran == []
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_named_output_through_a_symlink_writes_its_target(tmp_path: Path) -> None:
    target = tmp_path / "real.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    with named_output(link, "lockfile") as out:
        out.write(b"new")
    assert link.is_symlink()
    assert target.read_text() == "new"
