"""Cache bundles under attack: cut short, malformed or lying manifests, oversized members,
links, special files where a bundle is expected, a store that is too small, and a store
that changes while it is exported. Each case: one error line with the right exit code and
nothing imported, or a bundle that its own import accepts."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest

from tests.adversarial.conftest import one_line_error

WHEEL = "wheels/plat/a-1.0-py3-none-any.whl"
SHA_OF_A = "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"  # sha256(b"a")


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store with two wheels and a tarball."""
    root = tmp_path / "store"
    (root / "wheels" / "plat").mkdir(parents=True)
    (root / "wheels" / "plat" / "a-1.0-py3-none-any.whl").write_bytes(b"a")
    (root / "wheels" / "plat" / "b-1.0-py3-none-any.whl").write_bytes(b"b" * 5000)
    (root / "tarballs" / "plat").mkdir(parents=True)
    (root / "tarballs" / "plat" / "t-1.0.tar.gz").write_bytes(b"t" * 300)
    return root


def export(jetforge, store: Path, bundle: Path):  # type: ignore[no-untyped-def]
    return jetforge("cache", "export", str(bundle), "--dir", str(store))


def import_(jetforge, bundle: Path, target: Path):  # type: ignore[no-untyped-def]
    return jetforge("cache", "import", str(bundle), "--dir", str(target))


def untouched(target: Path) -> bool:
    """Nothing was imported and nothing was left behind (no staging directory)."""
    return not target.exists() or not any(target.iterdir())


def craft(path: Path, manifest: object, members: dict[str, bytes] | None = None) -> Path:
    """A tar file holding ``members`` and ``manifest`` (bytes as they are, else JSON)."""
    data = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
    with tarfile.open(path, "w") as tar:
        for name, content in (members or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def manifest_of(*files: dict[str, object]) -> dict[str, object]:
    return {"format": "jetforge-cache-bundle", "version": 1, "files": list(files)}


GOOD = {"path": WHEEL, "size": 1, "sha256": SHA_OF_A}


# --- what export writes ------------------------------------------------------------------


def test_a_symlinked_and_a_hard_linked_wheel_export_as_regular_files(jetforge, store, tmp_path):
    wheels = store / "wheels" / "plat"
    (wheels / "c-1.0-py3-none-any.whl").symlink_to(wheels / "a-1.0-py3-none-any.whl")
    os.link(wheels / "b-1.0-py3-none-any.whl", wheels / "d-1.0-py3-none-any.whl")
    bundle = tmp_path / "bundle.tar"
    assert export(jetforge, store, bundle).code == 0
    with tarfile.open(bundle) as tar:
        kinds = {member.name: member.isreg() for member in tar}
    assert all(kinds.values()), kinds
    assert len(kinds) == 6
    target = tmp_path / "target"
    result = import_(jetforge, bundle, target)
    assert result.code == 0, result.stderr
    assert (target / "wheels/plat/c-1.0-py3-none-any.whl").read_bytes() == b"a"
    assert (target / "wheels/plat/d-1.0-py3-none-any.whl").read_bytes() == b"b" * 5000
    assert not (target / "wheels/plat/c-1.0-py3-none-any.whl").is_symlink()


def test_a_file_that_changes_between_reads_gives_a_bundle_its_import_accepts(
    jetforge, store, tmp_path
):
    # /proc/uptime says it is empty and reads differently every time: a wheel rewritten
    # between the hash and the copy, deterministically.
    (store / "wheels" / "plat" / "u-1.0-py3-none-any.whl").symlink_to("/proc/uptime")
    bundle = tmp_path / "bundle.tar.gz"
    assert export(jetforge, store, bundle).code == 0
    result = import_(jetforge, bundle, tmp_path / "target")
    assert result.code == 0, result.stderr


def test_export_while_a_wheel_is_rewritten_never_gives_a_bundle_its_import_refuses(
    jetforge, store, tmp_path
):
    wheel = store / "wheels" / "plat" / "big-1.0-py3-none-any.whl"
    wheel.write_bytes(b"0" * (4 << 20))
    stop = threading.Event()

    def rewrite() -> None:  # in place, as a careless tool would, in sizes that differ
        turn = 0
        while not stop.is_set():
            turn += 1
            with wheel.open("r+b") as out:
                out.truncate(0)
                out.write(str(turn % 10).encode() * ((4 << 20) + turn % 7))

    writer = threading.Thread(target=rewrite)
    writer.start()
    try:
        outcomes = []
        for attempt in range(4):
            bundle = tmp_path / f"bundle{attempt}.tar"
            exported = export(jetforge, store, bundle)
            outcomes.append(exported.code)
            if exported.code == 0:
                imported = import_(jetforge, bundle, tmp_path / f"target{attempt}")
                assert imported.code == 0, imported.stderr
            else:
                one_line_error(exported, 1, "changed each time it was read")
    finally:
        stop.set()
        writer.join()
    assert 0 in outcomes or len(outcomes) == 4


def test_export_onto_a_full_device_is_one_line_and_leaves_nothing(jetforge, store, tiny_filesystem):
    (store / "wheels" / "plat" / "big-1.0-py3-none-any.whl").write_bytes(os.urandom(200_000))
    bundle = tiny_filesystem / "bundle.tar"
    result = export(jetforge, store, bundle)
    one_line_error(result, 1, f"cannot write the bundle {bundle}", "No space left on device")
    assert list(tiny_filesystem.iterdir()) == []


# --- what import refuses -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["bundle.tar", "bundle.tar.gz"])
@pytest.mark.parametrize("keep", [0.25, 0.5, 0.9])
def test_a_truncated_bundle_imports_nothing(jetforge, store, tmp_path, name, keep):
    (store / "wheels" / "plat" / "r-1.0-py3-none-any.whl").write_bytes(os.urandom(60_000))
    bundle = tmp_path / name
    assert export(jetforge, store, bundle).code == 0
    data = bundle.read_bytes()
    bundle.write_bytes(data[: int(len(data) * keep)])
    target = tmp_path / "target"
    result = import_(jetforge, bundle, target)
    assert result.code in (1, 2)
    one_line_error(result, result.code, str(bundle))
    assert untouched(target)


@pytest.mark.parametrize(
    ("manifest", "fragment"),
    [
        (b"{not json", "manifest.json is not JSON"),
        ([], "does not say format"),
        ({"format": "jetforge-cache-bundle", "version": 1}, "has no list of 'files'"),
        ({**manifest_of(GOOD), "version": 2}, "has version 2"),
        ({**manifest_of(GOOD), "version": True}, "has version true; this jetforge reads version 1"),
        ({**manifest_of(GOOD), "version": 1.0}, "has version 1.0; this jetforge reads version 1"),
        (manifest_of({**GOOD, "size": "1"}), "lists a file as"),
        (manifest_of({**GOOD, "size": -1}), "lists a file as"),
        (manifest_of({**GOOD, "size": True}), "lists a file as"),
        (manifest_of({**GOOD, "sha256": "abc"}), "lists a file as"),
        (manifest_of({**GOOD, "path": "../../etc/passwd"}), "lists a file as"),
        (manifest_of({**GOOD, "path": "/etc/passwd"}), "lists a file as"),
        (manifest_of("wheels/plat/a.whl"), "lists a file as"),
        (manifest_of(GOOD, GOOD), f"lists {WHEEL} twice"),
    ],
)
def test_a_malformed_manifest_is_one_line(jetforge, tmp_path, manifest, fragment):
    bundle = craft(tmp_path / "bundle.tar", manifest, {WHEEL: b"a"})
    target = tmp_path / "target"
    one_line_error(import_(jetforge, bundle, target), 2, str(bundle), fragment)
    assert untouched(target)


@pytest.mark.parametrize("content", [b"", bytes(range(256)) * 20], ids=["empty", "bytes"])
def test_a_file_that_is_no_archive_is_one_line(jetforge, tmp_path, content):
    bundle = tmp_path / "garbage.tar"
    bundle.write_bytes(content)
    result = import_(jetforge, bundle, tmp_path / "t")
    one_line_error(result, 2, f"{bundle} is not a jetforge cache bundle (not a tar archive, plain")
    assert result.stderr.count("\n") == 1, result.stderr


def test_a_bundle_without_manifest_is_one_line(jetforge, tmp_path):
    bundle = tmp_path / "bundle.tar"
    with tarfile.open(bundle, "w") as tar:
        info = tarfile.TarInfo(WHEEL)
        info.size = 1
        tar.addfile(info, io.BytesIO(b"a"))
    one_line_error(import_(jetforge, bundle, tmp_path / "t"), 2, "has no manifest.json")


def test_a_member_larger_than_its_manifest_says_is_refused_before_writing(
    jetforge, tiny_filesystem, tmp_path
):
    big = os.urandom(200_000)  # more than the tiny store holds: a write would fail first
    bundle = craft(tmp_path / "bundle.tar", manifest_of(GOOD), {WHEEL: big})
    result = import_(jetforge, bundle, tiny_filesystem / "store")
    one_line_error(result, 1, f"'{WHEEL}' holds 200000 bytes, larger than its manifest says (1)")
    assert untouched(tiny_filesystem / "store")


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE])
def test_a_member_that_is_not_a_regular_file_is_refused(jetforge, tmp_path, kind):
    bundle = tmp_path / "bundle.tar"
    data = json.dumps(manifest_of(GOOD)).encode()
    with tarfile.open(bundle, "w") as tar:
        info = tarfile.TarInfo(WHEEL)
        info.type, info.linkname = kind, "/etc/passwd"
        tar.addfile(info)
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    target = tmp_path / "target"
    one_line_error(import_(jetforge, bundle, target), 1, "is not a regular file member")
    assert untouched(target)


def test_a_manifest_that_is_a_link_is_refused(jetforge, tmp_path):
    bundle = tmp_path / "bundle.tar"
    with tarfile.open(bundle, "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.type, info.linkname = tarfile.SYMTYPE, "/dev/zero"
        tar.addfile(info)
    one_line_error(import_(jetforge, bundle, tmp_path / "t"), 2, "is not a regular file")


def test_a_member_the_manifest_does_not_list_or_lists_twice_is_refused(jetforge, tmp_path):
    extra = craft(tmp_path / "extra.tar", manifest_of(GOOD), {WHEEL: b"a", "wheels/p/x.whl": b""})
    one_line_error(import_(jetforge, extra, tmp_path / "t1"), 1, "is not in its manifest")
    twice = tmp_path / "twice.tar"
    with tarfile.open(twice, "w") as tar:
        for _ in range(2):
            info = tarfile.TarInfo(WHEEL)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"a"))
    one_line_error(import_(jetforge, twice, tmp_path / "t2"), 1, "is in it twice")


@pytest.mark.parametrize("special", ["fifo", "/dev/zero", "directory"])
def test_a_special_file_where_a_bundle_is_expected_is_one_line(jetforge, tmp_path, special):
    if special == "fifo":
        bundle = tmp_path / "bundle.tar"
        os.mkfifo(bundle)
        kind = "is a FIFO"
    elif special == "directory":
        bundle = tmp_path
        kind = "is a directory"
    else:
        bundle = Path(special)
        kind = "is a character device"
    found = []
    worker = threading.Thread(
        target=lambda: found.append(import_(jetforge, bundle, tmp_path / "t")), daemon=True
    )
    worker.start()
    worker.join(20)
    assert not worker.is_alive(), "import blocked on a special file"
    one_line_error(found[0], 2, str(bundle), kind, "expected a jetforge cache bundle")


def test_an_import_that_does_not_fit_names_needed_and_free_space(
    jetforge, store, tmp_path, tiny_filesystem
):
    (store / "wheels" / "plat" / "big-1.0-py3-none-any.whl").write_bytes(os.urandom(200_000))
    bundle = tmp_path / "bundle.tar"
    assert export(jetforge, store, bundle).code == 0
    target = tiny_filesystem / "store"
    result = import_(jetforge, bundle, target)
    one_line_error(result, 1, f"not enough space for {bundle} in {target}", "need", "free")
    assert untouched(target)


def test_files_already_in_the_store_need_no_space(jetforge, store, tmp_path, tiny_filesystem):
    bundle = tmp_path / "bundle.tar"
    assert export(jetforge, store, bundle).code == 0
    big = store / "wheels" / "plat" / "big-1.0-py3-none-any.whl"
    big.write_bytes(os.urandom(200_000))
    assert export(jetforge, store, tmp_path / "big.tar").code == 0
    target = tiny_filesystem / "store"
    assert import_(jetforge, bundle, target).code == 0
    result = import_(jetforge, tmp_path / "big.tar", target)
    one_line_error(result, 1, "not enough space", "its 1 new file(s)")


def test_a_killed_import_leaves_nothing_behind_the_next_one(jetforge, store, tmp_path):
    bundle = tmp_path / "bundle.tar"
    assert export(jetforge, store, bundle).code == 0
    target = tmp_path / "target"
    (target / ".import-999999999-x" / "wheels").mkdir(parents=True)  # a pid that is gone
    assert import_(jetforge, bundle, target).code == 0
    assert sorted(path.name for path in target.iterdir()) == ["tarballs", "wheels"]


def test_an_import_into_a_read_only_store_is_one_line(jetforge, store, tmp_path, tiny_filesystem):
    bundle = tmp_path / "bundle.tar"
    assert export(jetforge, store, bundle).code == 0
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_filesystem)], check=True)
    result = import_(jetforge, bundle, tiny_filesystem / "store")
    one_line_error(result, 1, "Read-only file system", "nothing was imported")
