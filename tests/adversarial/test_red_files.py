"""Files in the way: what a hostile test run found where jetforge writes a path the user
named (``cache export FILE``, ``bake --output DIR``, ``docs --output``, ``--lock``, ``--logs``),
its own lock and record files, the keyring ``bootstrap`` hands on, package files that are
not regular files, the stored SBOM and the trust stage. Each case: one error line with the
right exit code, or the right behaviour, and nothing replaced, lost or left hanging.

Device nodes are made here with ``mknod`` in a temporary directory (root only, as on the CI
machine); the machine's own ``/dev`` entries are never written."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest

from jetforge.host.trust import trust_context
from tests.adversarial.conftest import one_line_error
from tests.conftest import FIXTURES

HEADER = "#---\n# name: {}\n#---\nARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\n"
TEST_CA = FIXTURES / "certs" / "test-ca.crt"
CLEAN = {"SSL_CERT_FILE": "", "REQUESTS_CA_BUNDLE": "", "PIP_CERT": ""}
NULL, ZERO, FULL = 3, 5, 7  # minors of the memory devices (major 1)


def device(path: Path, minor: int) -> Path:
    """A private character device node of the memory devices at ``path``."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, minor))
    except PermissionError:
        pytest.skip("creating device nodes needs root (as on the CI machine)")
    return path


def is_device(path: Path, minor: int) -> bool:
    found = path.lstat()
    return stat.S_ISCHR(found.st_mode) and found.st_rdev == os.makedev(1, minor)


def full_filesystem(mount: Path) -> Path:
    """``mount`` filled up; a directory on it that nothing more fits in."""
    place = mount / "out"
    place.mkdir()
    (mount / "filler").write_bytes(b"x" * 64 * 1024)
    return place


class Reader:
    """Reads a FIFO in a thread until its writer closes it (what ``cat FIFO`` does). Its
    end is open before the constructor returns, so a writer finds a reader at once."""

    def __init__(self, fifo: Path) -> None:
        self.data = b""
        self._done = threading.Event()
        self._descriptor = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        chunks: list[bytes] = []
        while True:
            try:
                chunk = os.read(self._descriptor, 1 << 16)
            except BlockingIOError:  # a writer, nothing written yet
                time.sleep(0.01)
                continue
            if chunk:
                chunks.append(chunk)
            elif chunks or self._done.is_set():  # the writer closed it, or none came
                break
            else:
                time.sleep(0.01)  # no writer yet
        os.close(self._descriptor)
        self.data = b"".join(chunks)

    def join(self) -> bytes:
        self._thread.join(30)
        assert not self._thread.is_alive(), "the writer never closed the FIFO"
        return self.data

    def release(self) -> None:
        """Stop waiting for a writer once the command has ended."""
        self._done.set()
        self._thread.join(30)


@pytest.fixture
def process(cli_env):  # type: ignore[no-untyped-def]
    """``process(*argv, env=...)``: jetforge in a process of its own, killed after
    ``timeout`` seconds (a hang fails the test instead of the suite)."""
    from tests.conftest import CliResult

    def call(*argv: str, env: dict[str, str] | None = None, timeout: float = 60):  # type: ignore[no-untyped-def]
        try:
            done = subprocess.run(
                [sys.executable, "-m", "jetforge", *argv],
                capture_output=True,
                text=True,
                env={**cli_env, "JETFORGE_SHIPPED_PACKAGES": "", **CLEAN, **(env or {})},
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"jetforge {' '.join(argv)} still ran after {timeout} s")
        return CliResult(done.returncode, done.stdout, done.stderr)

    return call


def base_image(tmp_path: Path) -> Path:
    """``image inspect`` output of a base image, for the stand-in engine."""
    path = tmp_path / "inspect.json"
    image = {"Id": "sha256:" + "ab" * 32, "Config": {"Labels": {}}, "RepoTags": ["debian:12"]}
    path.write_text(json.dumps([image]))
    return path


# --- finding 1: cache export FILE ---------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    (root / "wheels" / "plat").mkdir(parents=True)
    (root / "wheels" / "plat" / "a-1.0-py3-none-any.whl").write_bytes(b"a" * 100)
    return root


def export(jetforge, store: Path, bundle: Path):  # type: ignore[no-untyped-def]
    return jetforge("cache", "export", str(bundle), "--dir", str(store))


@pytest.mark.parametrize("minor", [FULL, ZERO])
def test_export_onto_a_device_is_refused_and_the_device_kept(jetforge, store, tmp_path, minor):
    node = device(tmp_path / "dev", minor)
    link = tmp_path / "link"
    link.symlink_to(node)
    for path in (node, link):
        result = export(jetforge, store, path)
        one_line_error(result, 2, f"cannot write the bundle {path}: is a character device")
        assert is_device(node, minor)
        assert link.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev", "link", "store"]


def test_export_to_a_fifo_with_a_reader_writes_through_it(jetforge, store, tmp_path):
    fifo = tmp_path / "bundle.tar"
    os.mkfifo(fifo)
    reader = Reader(fifo)
    try:
        result = export(jetforge, store, fifo)
    finally:
        reader.release()
    assert result.code == 0, result.stderr
    received = tmp_path / "received.tar"
    received.write_bytes(reader.join())
    with tarfile.open(received) as tar:
        assert tar.getnames() == ["wheels/plat/a-1.0-py3-none-any.whl", "manifest.json"]
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_export_to_a_fifo_nobody_reads_is_one_line_not_a_hang(jetforge, store, tmp_path):
    fifo = tmp_path / "bundle.tar"
    os.mkfifo(fifo)
    result = export(jetforge, store, fifo)
    one_line_error(result, 2, f"cannot write the bundle {fifo}: is a FIFO that nobody reads")
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_export_to_the_null_device_writes_through_and_keeps_it(jetforge, store, tmp_path):
    null = device(tmp_path / "null", NULL)
    assert export(jetforge, store, null).code == 0
    assert is_device(null, NULL)


def test_export_through_a_symlink_replaces_its_target_and_keeps_the_link(jetforge, store, tmp_path):
    (tmp_path / "bundles").mkdir()
    target = tmp_path / "bundles" / "b.tar"
    target.write_text("old")
    target.chmod(0o640)
    link = tmp_path / "b.tar"
    link.symlink_to(Path("bundles") / "b.tar")
    assert export(jetforge, store, link).code == 0
    assert link.is_symlink()
    assert tarfile.is_tarfile(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert [p.name for p in target.parent.iterdir()] == ["b.tar"]


# --- finding 1: bake --output DIR ---------------------------------------------------------


@pytest.fixture
def bake_run(run, tree, tmp_path):  # type: ignore[no-untyped-def]
    root = tree({"a/Dockerfile": HEADER.format("a")})
    out = tmp_path / "out"

    def call(*extra: str, output: Path = out):  # type: ignore[no-untyped-def]
        argv = ("bake", "a", "--base", "debian:12", "--output", str(output), *extra)
        return run(root, *argv, env=CLEAN)

    return call, out


def dockerfile_name(out: Path) -> str:
    [name] = [p.name for p in out.iterdir() if p.name.endswith(".Dockerfile")]
    return name


def test_bake_onto_a_fifo_is_one_line(bake_run):
    call, out = bake_run
    out.mkdir()
    os.mkfifo(out / "docker-bake.json")
    reader = Reader(out / "docker-bake.json")
    try:
        result = call()
    finally:
        reader.release()
    one_line_error(result, 2, f"--output: {out / 'docker-bake.json'}: is a FIFO")
    assert stat.S_ISFIFO((out / "docker-bake.json").lstat().st_mode)
    assert not any(p.name.endswith(".Dockerfile") for p in out.iterdir())  # nothing written


@pytest.mark.parametrize("kind", ["fifo", "link-to-device"])
def test_a_bad_bake_file_is_refused_before_any_directory_is_made(bake_run, tmp_path, kind):
    call, out = bake_run
    out.mkdir()
    if kind == "fifo":
        os.mkfifo(out / "docker-bake.json")
    else:
        (out / "docker-bake.json").symlink_to(device(tmp_path / "zero", ZERO))
    result = call("--ca-bundle", str(TEST_CA))
    one_line_error(result, 2, f"--output: {out / 'docker-bake.json'}: is a")
    assert [p.name for p in out.iterdir()] == ["docker-bake.json"]  # no ca-trust-*/ made


@pytest.mark.parametrize("missing", [False, True])
def test_bake_into_a_read_only_directory_is_one_line(bake_run, tiny_filesystem, missing):
    call, _ = bake_run
    out = tiny_filesystem / "out"
    if not missing:
        out.mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_filesystem)], check=True)
    result = call("--ca-bundle", str(TEST_CA), output=out)
    one_line_error(result, 2, f"--output: {out}/", "read-only")
    assert "re-run with -v" not in result.stderr


def test_bake_never_writes_a_dockerfile_through_a_link_to_a_device(bake_run, tmp_path):
    call, out = bake_run
    assert call().code == 0
    name = dockerfile_name(out)
    (out / name).unlink()
    (out / "docker-bake.json").unlink()
    node = device(tmp_path / "zero", ZERO)
    (out / name).symlink_to(node)
    result = call()
    one_line_error(result, 2, f"--output: {out / name}: is a character device")
    assert is_device(node, ZERO)
    assert not (out / "docker-bake.json").exists()  # no bake file naming the device


def test_bake_onto_a_full_device_names_the_file_and_leaves_no_part(bake_run, tiny_filesystem):
    call, _ = bake_run
    out = full_filesystem(tiny_filesystem)
    result = call("--ca-bundle", str(TEST_CA), output=out)
    one_line_error(result, 1, f"--output: cannot write {out}/", "No space left on device")
    assert [p.name for p in out.rglob("*") if p.is_file()] == []  # no partial file


# --- finding 1: docs --output, --logs -----------------------------------------------------


def test_docs_output_through_a_symlink_keeps_the_link(jetforge, tree, tmp_path):
    root = tree({"a/Dockerfile": HEADER.format("a")})
    target = tmp_path / "pages" / "packages.md"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "packages.md"
    link.symlink_to(target)
    env = {"JETFORGE_SHIPPED_PACKAGES": str(root)}
    result = jetforge("docs", "packages", "--output", str(link), env=env)
    assert result.code == 0, result.stderr
    assert link.is_symlink()
    assert target.read_text() == jetforge("docs", "packages", env=env).stdout


def test_docs_output_to_a_fifo_with_a_reader_writes_through_it(jetforge, tree, tmp_path):
    root = tree({"a/Dockerfile": HEADER.format("a")})
    fifo = tmp_path / "packages.md"
    os.mkfifo(fifo)
    reader = Reader(fifo)
    try:
        result = jetforge(
            "docs", "packages", "--output", str(fifo), env={"JETFORGE_SHIPPED_PACKAGES": str(root)}
        )
    finally:
        reader.release()
    assert result.code == 0, result.stderr
    assert b"# " in reader.join()
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_a_logs_directory_holding_a_fifo_is_one_line_before_the_build(
    process, fake_engine, tree, tmp_path
):
    root = tree({"a/Dockerfile": HEADER.format("a")})
    logs = tmp_path / "logs"
    logs.mkdir()
    os.mkfifo(logs / "plan.json")  # nobody reads it: writing it would block
    env = {**fake_engine({}), "JETFORGE_FAKE_IMAGE": str(base_image(tmp_path))}
    argv = ("build", "a", "--base", "debian:12", "--logs", str(logs))
    result = process(*argv, "--package-dirs", str(root), env=env)
    one_line_error(result, 2, f"--logs: {logs / 'plan.json'}: is a FIFO")


# --- finding 3: errors name the file being written, the state directory is checked ---------


def test_a_full_device_under_the_lockfile_is_named_not_the_logs(tmp_path, tiny_filesystem):
    from jetforge.errors import FailureError
    from tests.test_lock import execute, golden_plan, make_engine

    lock_file = full_filesystem(tiny_filesystem) / "bundle.lock.json"
    with pytest.raises(FailureError) as failed:
        execute(golden_plan(), make_engine(), tmp_path, lock_file=lock_file)
    assert str(failed.value).startswith(f"--lock: cannot write {lock_file}: No space left")
    assert not lock_file.exists()
    assert list(lock_file.parent.iterdir()) == []  # no temporary left


def test_write_atomic_names_the_file_on_a_full_device(tiny_filesystem):
    from jetforge.host.files import write_atomic

    path = full_filesystem(tiny_filesystem) / "state.json"
    with pytest.raises(OSError, match="No space left") as failed:
        write_atomic(path, b"x" * 100_000)
    assert failed.value.filename == str(path)
    assert list(path.parent.iterdir()) == []


@pytest.mark.parametrize("command", ["build", "lock"])
@pytest.mark.parametrize("problem", ["read-only", "full"])
def test_an_unwritable_state_directory_is_one_line_before_the_build(
    run, tree, tiny_filesystem, tmp_path, problem, command
):
    root = tree({"a/Dockerfile": HEADER.format("a")})
    if problem == "full":
        (tiny_filesystem / "filler").write_bytes(b"x" * 64 * 1024)
        why, code = "No space left on device", 1
    else:
        subprocess.run(["mount", "-o", "remount,ro", str(tiny_filesystem)], check=True)
        why, code = "Read-only file system", 2
    env = {"XDG_STATE_HOME": str(tiny_filesystem)}
    extra = ("--file", str(tmp_path / "a.lock.json")) if command == "lock" else ()
    result = run(root, command, "a", "--base", "debian:12", *extra, env=env)
    one_line_error(
        result, code, f"cannot write the state directory {tiny_filesystem}/jetforge ({why})"
    )
    assert "docker" not in result.stderr  # before the engine was asked


# --- finding 2: the build lock file -------------------------------------------------------


@pytest.mark.parametrize("kind", ["fifo", "link-to-device", "directory"])
def test_a_build_lock_that_is_not_a_regular_file_is_one_line(
    process, fake_engine, tree, tmp_path, cli_env, kind
):
    root = tree({"a/Dockerfile": HEADER.format("a")})
    env = {**fake_engine({}), "JETFORGE_FAKE_IMAGE": str(base_image(tmp_path))}
    argv = ("build", "a", "--base", "debian:12", "--package-dirs", str(root))
    process(*argv, env=env)  # makes the lock file (the stand-in engine cannot build)
    [lock] = (Path(cli_env["XDG_CACHE_HOME"]) / "jetforge" / "building").iterdir()
    lock.unlink()
    if kind == "fifo":
        os.mkfifo(lock)
    elif kind == "directory":
        lock.mkdir()
    else:
        lock.symlink_to(device(tmp_path / "zero", ZERO))
    result = process(*argv, env=env)
    one_line_error(result, 2, f"{lock}: ", "jetforge's build lock; remove it")
    assert {"fifo": stat.S_ISFIFO, "directory": stat.S_ISDIR, "link-to-device": stat.S_ISLNK}[kind](
        lock.lstat().st_mode
    )


# --- finding 4: bootstrap's keyring, and what a stopped child started ----------------------


@pytest.mark.parametrize("kind", ["fifo", "device", "directory-holding-a-fifo"])
def test_a_keyring_that_is_not_a_file_or_directory_is_one_line(process, tmp_path, kind):
    keyring = tmp_path / "keyring"
    if kind == "fifo":
        os.mkfifo(keyring)
        fragment = f"--keyring {keyring} is a FIFO, not a keyring"
    elif kind == "device":
        device(keyring, ZERO)
        fragment = f"--keyring {keyring} is a character device, not a keyring"
    else:
        keyring.mkdir()
        (keyring / "debian.gpg").write_bytes(b"")
        os.mkfifo(keyring / "extra.gpg")
        fragment = f"--keyring {keyring} holds extra.gpg, which is a FIFO"
    result = process("bootstrap", "--distro", "debian:12", "--keyring", str(keyring))
    one_line_error(result, 2, fragment, "name a keyring file")
    if kind == "fifo":
        assert stat.S_ISFIFO(keyring.stat().st_mode)


def is_running(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


STAND_IN_MMDEBSTRAP = """#!/bin/sh
# What mmdebstrap does while apt reads the keyring: it runs children (apt-get, gpgv).
sleep 300 &
echo $! > "$PIDS.tmp" && mv "$PIDS.tmp" "$PIDS"
wait
"""


def test_sigterm_during_bootstrap_stops_what_mmdebstrap_started(fake_engine, cli_env, tmp_path):
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "mmdebstrap").write_text(STAND_IN_MMDEBSTRAP)
    (tools / "mmdebstrap").chmod(0o755)
    pids = tmp_path / "pids"
    keyring = tmp_path / "debian.gpg"
    keyring.write_bytes(b"")
    env = {
        **cli_env,
        **fake_engine({}),
        "PATH": f"{tools}:{os.environ['PATH']}",
        "PIDS": str(pids),
    }
    argv = ["bootstrap", "--distro", "debian:12", "--keyring", str(keyring)]
    with subprocess.Popen(
        [sys.executable, "-m", "jetforge", *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as jetforge:
        try:
            deadline = time.monotonic() + 60
            while not pids.exists() and time.monotonic() < deadline:
                assert jetforge.poll() is None, jetforge.communicate()[1]
                time.sleep(0.1)
            started = int(pids.read_text())
            jetforge.send_signal(signal.SIGTERM)
            assert jetforge.wait(timeout=30) == 143
        finally:
            if jetforge.poll() is None:
                jetforge.kill()
    deadline = time.monotonic() + 15
    while is_running(started) and time.monotonic() < deadline:
        time.sleep(0.1)
    if is_running(started):
        os.kill(started, signal.SIGKILL)
        pytest.fail("what mmdebstrap started outlived jetforge")


# --- finding 5: package files that are not regular files ----------------------------------


def test_a_test_script_that_is_a_fifo_is_a_definition_error_not_a_hang(run, tree):
    root = tree(
        {"b/Dockerfile": HEADER.format("b").replace("#---\n#", "#---\n# test: check.sh\n#", 1)}
    )
    os.mkfifo(root / "b" / "check.sh")
    result = run(root, "list", "--strict")
    one_line_error(result, 2, "1 package definition(s) have errors")
    assert "b: test 'check.sh' is a FIFO, not a regular file" in result.stderr
    result = run(root, "build", "--simulate", "b")
    one_line_error(result, 2, "b")
    assert stat.S_ISFIFO((root / "b" / "check.sh").stat().st_mode)


@pytest.mark.parametrize("package_format", ["jetforge", "jc"])
def test_a_dockerfile_that_is_a_fifo_is_a_broken_package_not_none(
    run, tree, package_format, tmp_path
):
    root = tree({"a/Dockerfile": HEADER.format("a")})
    os.mkfifo(root / "a" / "notes")  # no package file's name: nothing to say
    (root / "b").mkdir()
    os.mkfifo(root / "b" / "Dockerfile")
    result = run(root, "list", "--strict", "--package-format", package_format)
    one_line_error(result, 2, "1 package definition(s) have errors")
    assert f"{root / 'b' / 'Dockerfile'}: is a FIFO, not a regular file" in result.stderr


def test_a_jc_test_script_that_is_a_fifo_is_a_definition_error(run, tree):
    root = tree({"e/Dockerfile": "#---\n# name: e\n#---\nARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"})
    os.mkfifo(root / "e" / "test.sh")
    result = run(root, "list", "--strict", "--package-format", "jc")
    one_line_error(result, 2, "1 package definition(s) have errors")
    assert f"{root / 'e' / 'test.sh'}: is a FIFO, not a regular file" in result.stderr


def test_a_named_dockerfile_that_is_a_device_is_named_as_such(run, tree, tmp_path):
    root = tree({"f/package.yaml": "name: f\ndockerfile: f.Dockerfile\n"})
    device(root / "f" / "f.Dockerfile", ZERO)
    result = run(root, "list", "--strict")
    one_line_error(result, 2, "1 package definition(s) have errors")
    assert "dockerfile 'f.Dockerfile' in" in result.stderr
    assert "is a character device, not a regular file" in result.stderr


# --- finding 6: SBOM records read back ----------------------------------------------------


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"not json\n", "is not JSON (Expecting value at line 1)"),
        (b"[1, 2]\n", "is JSON list, not an object"),
        (b"[" * 100_000, "is not JSON it can read (nested too deeply)"),
        (b'{"spdxVersion": "SPDX-2.2"}\n', "has spdxVersion \"SPDX-2.2\", not 'SPDX-2.3'"),
        (b"", "is larger than 256 MiB"),
    ],
    ids=["text", "array", "nested", "version", "huge"],
)
def test_an_sbom_record_that_is_not_an_spdx_document_is_one_line(
    jetforge, fake_engine, cli_env, tmp_path, content, fragment
):
    image_id = "sha256:" + "d" * 64
    image = tmp_path / "image.json"
    image.write_text(json.dumps([{"Id": image_id, "RepoTags": ["demo:1"], "Config": {}}]))
    kept = Path(cli_env["XDG_STATE_HOME"]) / "jetforge" / "sbom" / f"sha256_{'d' * 64}.spdx.json"
    kept.parent.mkdir(parents=True, mode=0o700)
    kept.write_bytes(content)
    kept.chmod(0o600)
    if not content:
        os.truncate(kept, 256 * 1024 * 1024 + 1)  # sparse: nothing to read, were it read
    env = {**fake_engine({}), "JETFORGE_FAKE_IMAGE": str(image)}
    result = jetforge("sbom", "demo:1", env=env)
    one_line_error(result, 2, f"sbom: {kept} {fragment}", "jetforge build")
    assert result.stdout == ""


# --- finding 7: the CA bundle ---------------------------------------------------------------

TEST_CA = FIXTURES / "certs" / "test-ca.crt"
NO_HOST_BUNDLE = {"SSL_CERT_FILE": "", "REQUESTS_CA_BUNDLE": "", "PIP_CERT": ""}


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_a_ca_bundle_that_is_not_a_regular_file_is_one_line(process, tree, tmp_path, kind):
    root = tree({"a/Dockerfile": HEADER.format("a")})
    bundle = Path("/dev/null") if kind == "device" else tmp_path / "bundle.crt"
    if kind == "fifo":
        os.mkfifo(bundle)
    name = "a character device" if kind == "device" else "a FIFO"
    argv = ("build", "--simulate", "--package-dirs", str(root), "--ca-bundle", str(bundle), "a")
    result = process(*argv, env=NO_HOST_BUNDLE)
    one_line_error(result, 2, f"--ca-bundle: {bundle} is {name}; it must be a regular file")
    assert (stat.S_ISCHR if kind == "device" else stat.S_ISFIFO)(bundle.stat().st_mode)


BEGIN, END = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
BUNDLE_NAME = "jetforge-ca-bundle.crt"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (f"{BEGIN}\nSGVs bG8s%%IHdv\ncmxkIQ==\n{END}\n", "certificate 2's body is not base64"),
        (f"{BEGIN}\n{END}\n", "certificate 2 is empty"),
        ("# the host's bundle, emptied\n", "holds no PEM certificate"),
        ("x" * (16 * 1024 * 1024 + 1), "is larger than 16 MiB"),
    ],
    ids=["not-base64", "empty", "no-block", "huge"],
)
def test_a_ca_bundle_that_is_not_pem_certificates_is_one_line(run, tree, tmp_path, text, fragment):
    root = tree({"a/Dockerfile": HEADER.format("a")})
    bundle = tmp_path / "bundle.crt"
    bundle.write_text(text if "no PEM" in fragment else TEST_CA.read_text() + text)
    result = run(root, "build", "--simulate", "--ca-bundle", str(bundle), "a", env=NO_HOST_BUNDLE)
    one_line_error(result, 2, f"--ca-bundle: {bundle} ", fragment)


def test_the_ca_bundle_is_readable_by_every_user_of_the_image(tmp_path):
    cache = tmp_path / "cache"
    context = trust_context(str(TEST_CA), NO_HOST_BUNDLE, cache)
    assert context is not None
    bundle = context / "ca-bundle.crt"
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o644  # COPY keeps it: every user reads it
    assert stat.S_IMODE(context.stat().st_mode) == 0o700  # on the host, only its owner
    copy = f"COPY ca-bundle.crt /usr/local/share/ca-certificates/{BUNDLE_NAME}"
    assert copy in (context / "Dockerfile").read_text()
    bundle.chmod(0o600)  # a context an earlier jetforge left: written again, not used as is
    assert trust_context(str(TEST_CA), NO_HOST_BUNDLE, cache) == context
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o644
