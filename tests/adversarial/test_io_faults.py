"""A hostile environment around jetforge's own input and output: closed or full standard
streams, a deleted working directory, a cache directory that cannot be written, values
that look like options, and special files where jetforge expects a regular one. Each
case runs jetforge as a real process where the property needs it (descriptors, the
working directory) and asserts one error line and the exit code, or that the command
still works."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.adversarial.conftest import one_line_error
from tests.conftest import CliResult

HEADER = "#---\n# name: {}\n#---\nARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\n"


@pytest.fixture
def small(tree) -> Path:  # type: ignore[no-untyped-def]
    return tree({"a/Dockerfile": HEADER.format("a"), "b/Dockerfile": HEADER.format("b")})


@pytest.fixture
def process(cli_env):  # type: ignore[no-untyped-def]
    """``process(*argv, shell="", cwd=None, stdout=...)``: jetforge in a process of its own,
    started by bash after ``shell`` (redirections such as ``exec >&-``)."""

    def call(  # type: ignore[no-untyped-def]
        *argv: str,
        shell: str = "",
        cwd: Path | None = None,
        stdout=subprocess.PIPE,
        env: dict[str, str] | None = None,
        timeout: float = 120,
    ) -> CliResult:
        command = " ".join(["exec", sys.executable, "-m", "jetforge", *map(_quote, argv)])
        done = subprocess.run(
            ["bash", "-c", f"{shell}\n{command}"],
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            env={**cli_env, "JETFORGE_SHIPPED_PACKAGES": "", **(env or {})},
            timeout=timeout,
            check=False,
        )
        return CliResult(done.returncode, done.stdout or "", done.stderr)

    return call


def _quote(word: str) -> str:
    import shlex

    return shlex.quote(word)


# --- standard streams --------------------------------------------------------------------


def test_results_into_a_closed_stdout_are_one_line(process, small):
    result = process("list", "--package-dirs", str(small), shell="exec >&-")
    one_line_error(result, 1, "cannot write the results to standard output: it is closed")


def test_results_onto_a_full_device_are_one_line(process, small):
    with Path("/dev/full").open("w") as full:
        result = process("list", "--package-dirs", str(small), stdout=full)
    one_line_error(result, 1, "cannot write the results to standard output", "No space left")


def test_help_onto_a_full_device_is_one_line(process):
    with Path("/dev/full").open("w") as full:
        result = process("build", "--help", stdout=full)
    one_line_error(result, 1, "cannot write the results to standard output", "No space left")


def test_a_command_without_results_runs_with_stdout_closed(process, tmp_path):
    result = process("cache", "stop", shell="exec >&-")
    assert result.code == 0, result.stderr
    assert "Traceback" not in result.stderr


def test_diagnostics_onto_a_full_device_do_not_change_the_results(process, tree):
    broken = tree({"a/Dockerfile": HEADER.format("a"), "bad/Dockerfile": "#---\n# nme: x\n#---\n"})
    result = process("list", "--package-dirs", str(broken), shell="exec 2>/dev/full")
    assert result.code == 0
    assert result.stdout == "a\n"


def test_a_closed_standard_descriptor_is_not_reused_by_a_file_jetforge_opens(tmp_path):
    # Python makes sys.stdout None; without the reservation the next open gets number 1.
    script = (
        "from jetforge.cli.streams import reserve_standard_descriptors\n"
        "reserve_standard_descriptors()\n"
        "import os, sys\n"
        f"fd = os.open({str(tmp_path / 'f')!r}, os.O_WRONLY | os.O_CREAT)\n"
        "sys.stderr.write(str(fd))\n"
    )
    done = subprocess.run(
        ["bash", "-c", f'exec >&-; exec {sys.executable} -c "$0"', script],
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(done.stderr) > 2


# --- the working directory -------------------------------------------------------------


@pytest.mark.parametrize("argv", [["list"], ["build", "--simulate", "a"]], ids=["list", "sim"])
def test_a_deleted_working_directory_is_one_line(process, small, tmp_path, argv):
    gone = tmp_path / "gone"
    gone.mkdir()
    shell = f"cd {gone} && rmdir {gone}"
    result = process(*argv, "--package-dirs", str(small), shell=shell)
    one_line_error(result, 2, "cannot use the working directory (it was deleted)", "cd to")


# --- the cache directory -----------------------------------------------------------------


@pytest.fixture(params=["read-only", "full"])
def unwritable_cache(request, tiny_filesystem: Path) -> tuple[Path, str]:  # type: ignore[no-untyped-def]
    """A cache home that cannot be written, and the reason jetforge gives."""
    if request.param == "full":
        (tiny_filesystem / "jetforge").mkdir()
        (tiny_filesystem / "filler").write_bytes(b"x" * 64 * 1024)
        return tiny_filesystem, "No space left on device"
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_filesystem)], check=True)
    return tiny_filesystem, "Read-only file system"


CA = {"SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt"}  # a trust context to write


@pytest.mark.parametrize(
    "argv",
    [["list"], ["build", "--simulate", "a"], ["platform"], ["cache", "status"]],
    ids=["list", "simulate", "platform", "cache-status"],
)
def test_reading_commands_work_with_an_unwritable_cache(jetforge, small, unwritable_cache, argv):
    cache, why = unwritable_cache
    packages = ["--package-dirs", str(small)] if argv[0] in ("list", "build") else []
    env = {"XDG_CACHE_HOME": str(cache), "JETFORGE_SHIPPED_PACKAGES": "", **CA}
    result = jetforge(*argv, *packages, env=env)
    assert result.code == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "internal error" not in result.stderr
    warnings = [line for line in result.stderr.splitlines() if "cache directory" in line]
    assert len(warnings) <= 1, result.stderr
    assert all(why in line for line in warnings)


def test_a_build_with_an_unwritable_cache_is_one_line(run, small, unwritable_cache):
    cache, why = unwritable_cache
    result = run(small, "build", "a", env={"XDG_CACHE_HOME": str(cache)})
    code = 1 if why.startswith("No space") else 2
    one_line_error(result, code, f"cannot write the cache directory {cache}/jetforge ({why})")


def test_cache_serve_with_an_unwritable_cache_is_one_line(jetforge, unwritable_cache):
    cache, why = unwritable_cache
    result = jetforge("cache", "serve", "--background", env={"XDG_CACHE_HOME": str(cache)})
    code = 1 if why.startswith("No space") else 2
    one_line_error(result, code, "cannot write the cache directory", "XDG_CACHE_HOME")


def test_a_temporary_cache_directory_is_removed(run, small, unwritable_cache, tmp_path):
    cache, _ = unwritable_cache
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {"XDG_CACHE_HOME": str(cache), "TMPDIR": str(scratch), **CA}
    result = run(small, "build", "--simulate", "a", env=env)
    assert result.code == 0, result.stderr
    assert os.listdir(scratch) == []


# --- values that look like options -------------------------------------------------------

RECORDING_ENGINE = """#!/bin/sh
# A stand-in docker that records every call (one line per call, words between '|') and
# answers version, info and 'image inspect' (no such image) like a daemon that runs.
printf '|%s' "$@" >> "$JETFORGE_CALLS"; echo >> "$JETFORGE_CALLS"
case "$1" in
  version) echo '{"Client":{"Version":"28.2.2"},"Server":{"Version":"28.2.2"}}' ;;
  buildx) exit 1 ;;
  info) echo '{"ServerVersion":"28.2.2","Runtimes":{"runc":{}},"DockerRootDir":"/d"}' ;;
  *) echo "Error: no such object" >&2; exit 1 ;;
esac
"""


@pytest.fixture
def recording_engine(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """The environment that makes jetforge use the recording stand-in, and its call log."""
    program = tmp_path / "docker"
    program.write_text(RECORDING_ENGINE)
    program.chmod(0o755)
    calls = tmp_path / "calls"
    calls.touch()
    env = {"JETFORGE_DOCKER": str(program), "JETFORGE_CALLS": str(calls), "JETFORGE_ENGINE": ""}
    return env, calls


def engine_words(calls: Path) -> list[list[str]]:
    return [line.split("|")[1:] for line in calls.read_text().splitlines()]


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["build", "--base=--help", "a"], "--base: '--help' looks like an option"),
        (["build", "--simulate", "--base=-v", "a"], "--base: '-v' looks like an option"),
        (["build", "--base=", "a"], "--base: an empty value is not an image"),
        (["build", "--base=debian:12@sha256:zz", "a"], "'sha256:zz' is not a valid digest"),
        (["build", "--push=--help", "a"], "--push: '--help' looks like an option"),
        (["build", "--push=a/b:c", "a"], "--push: 'a/b:c' is not a registry and namespace"),
        (["build", "--name=--help", "a"], "--name: '--help' looks like an option"),
        (["bake", "--base=--help", "a"], "--base: '--help' looks like an option"),
        (["lock", "--base=--rm", "a"], "--base: '--rm' looks like an option"),
    ],
)
def test_option_looking_image_values_of_build_never_reach_the_engine(
    run, small, recording_engine, argv, fragment, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # where bake would write
    env, calls = recording_engine
    result = run(small, *argv, env=env)
    one_line_error(result, 2, fragment)
    assert not any(word.startswith("--help") for call in engine_words(calls) for word in call)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["run", "--dry-run", "--", "--help"], "run: '--help' looks like an option"),
        (["run", "--", "-v", "true"], "run: '-v' looks like an option"),
        (["run", "--dry-run", "Bad:Image"], "run: 'Bad' is not a valid image name"),
        (["sbom", "--", "--help"], "sbom: IMAGE: '--help' looks like an option"),
        (["bootstrap", "--tag=--help", "--distro", "debian:12"], "bootstrap --tag: '--help'"),
        (["bootstrap", "--mirror=--help", "--distro", "debian:12"], "is not a mirror URL"),
    ],
)
def test_option_looking_images_of_other_commands_never_reach_the_engine(
    jetforge, recording_engine, argv, fragment
):
    env, calls = recording_engine
    result = jetforge(*argv, env={**env, "JETFORGE_SHIPPED_PACKAGES": ""})
    one_line_error(result, 2, fragment)
    assert not any(word in ("--help", "-v") for call in engine_words(calls) for word in call)


def test_an_option_looking_registry_is_one_line(jetforge, recording_engine):
    env, _ = recording_engine
    env = {**env, "JETFORGE_REGISTRIES": "-x.io/team", "JETFORGE_SHIPPED_PACKAGES": ""}
    result = jetforge("autotag", "--no-build", "a", env=env)
    one_line_error(result, 2, "registry '-x.io/team' is not a registry and namespace")


def test_an_option_looking_base_image_of_the_config_file_is_one_line(run, small, tmp_path):
    config = tmp_path / "config" / "jetforge"
    config.mkdir(parents=True)
    (config / "jetforge.toml").write_text('[base_images]\n"ubuntu:24.04" = "--help"\n')
    result = run(
        small, "build", "--simulate", "a", env={"XDG_CONFIG_HOME": str(tmp_path / "config")}
    )
    one_line_error(result, 2, "base_images.ubuntu:24.04: '--help' looks like an option")


def test_every_name_the_engine_is_given_comes_after_double_dash():
    from jetforge.engine.docker import DockerEngine
    from jetforge.engine.podman import PodmanEngine
    from jetforge.errors import FailureError
    from jetforge.host.process import Completed

    calls: list[tuple[str, ...]] = []

    def runner(argv, **_):  # type: ignore[no-untyped-def]
        calls.append(tuple(argv))
        return Completed(tuple(argv), 1, "", "")

    for engine in (
        DockerEngine("docker", "buildkit", runner),
        PodmanEngine("podman", "podman", runner),
    ):
        calls.clear()
        name = "--privileged"  # e.g. from a lockfile or a registry answer
        engine.inspect(name)
        engine.pull(name, print)
        engine.push(name, print)
        with pytest.raises(FailureError):
            engine.tag(name, "x")
        engine.import_tarball("/t.tar", name)
        engine.remove_container(name)
        for call in calls:
            assert "--" in call, call
            assert call.index(name) > call.index("--"), call
        run = engine.run_command(("--rm",), name, ("true",)).argv
        assert run[run.index(name) - 1] == "--"


def _names_after_double_dash_on(engine_name: str) -> None:
    """Inspect, tag, untag, run, pull and remove on the real engine, through its program
    (with ``--`` before every name) and through its API where one answers: each works, and
    an option-looking name is refused as a name."""
    for extra in ({}, {"JETFORGE_ENGINE_API": "0"}):
        _names_work_on(engine_name, {**os.environ, **extra})


def _names_work_on(engine_name: str, env: dict[str, str]) -> None:
    import uuid

    from jetforge.engine.table import ENGINES

    engine = ENGINES[engine_name].connect(env)
    assert engine.inspect("debian:12") is not None
    assert engine.inspect("--help") is None
    alias = f"localhost/jftest-dash-{uuid.uuid4().hex[:8]}:x"
    engine.tag("debian:12", alias)
    try:
        assert engine.inspect(alias) is not None
        output: list[str] = []
        done = engine.run(("--rm", "--network", "none"), alias, ("true",), output.append)
        assert done.returncode == 0, output
        refused = engine.pull("--help", output.append)
        assert refused.returncode != 0
        assert not any("Usage" in line for line in output), output
        engine.remove_container(f"jftest-none-{uuid.uuid4().hex[:8]}")
    finally:
        engine.untag(alias)
    assert engine.inspect(alias) is None


@pytest.mark.engine
def test_names_after_double_dash_work_on_docker(docker_engine):
    _names_after_double_dash_on("docker")


@pytest.mark.podman
def test_names_after_double_dash_work_on_podman(docker_engine):
    if subprocess.run(["podman", "image", "exists", "debian:12"]).returncode != 0:
        pytest.skip("podman has no debian:12 image (scripts/setup loads it)")
    _names_after_double_dash_on("podman")


# --- special files where jetforge reads a regular one ------------------------------------

# A process of its own: a FIFO must not block it, /dev/zero must not fill its memory.
BOUNDED = "ulimit -v 4000000"


def special(path: Path, kind: str) -> Path:
    """Put a FIFO, or a link to /dev/zero, at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    return path


KINDS = {"fifo": "is a FIFO", "zero": "is a character device"}
IMAGE_ID = "sha256:" + "ab" * 32


@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_sbom_of_a_special_file_is_one_line(process, fake_engine, tmp_path, cli_env, kind):
    inspect = tmp_path / "inspect.json"
    inspect.write_text(json.dumps([{"Id": IMAGE_ID, "Config": {}, "RepoTags": ["img:1"]}]))
    state = Path(cli_env["XDG_STATE_HOME"]) / "jetforge"
    path = special(state / "sbom" / f"{IMAGE_ID.replace(':', '_')}.spdx.json", kind)
    env = {**fake_engine({}), "JETFORGE_FAKE_IMAGE": str(inspect)}
    result = process("sbom", "img:1", shell=BOUNDED, env=env, timeout=30)
    one_line_error(result, 2, f"sbom: {path} is not a record of this user's own", "regular file")


@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_a_config_file_that_is_a_special_file_is_one_line(process, small, tmp_path, kind):
    special(tmp_path / "jetforge.toml", kind)
    result = process("list", "--package-dirs", str(small), shell=BOUNDED, cwd=tmp_path, timeout=30)
    one_line_error(result, 2, "jetforge.toml", KINDS[kind], "expected a config file")


@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_a_server_state_that_is_a_special_file_reads_as_never_started(process, cli_env, kind):
    cache = Path(cli_env["XDG_CACHE_HOME"]) / "jetforge" / "package-cache"
    special(cache / "server.json", kind)
    result = process("cache", "status", shell=BOUNDED, timeout=30)
    assert result.code == 0, result.stderr
    assert "never started" in result.stdout


@pytest.mark.parametrize("name", ["credentials", "server.log"])
def test_cache_files_that_are_fifos_stop_serve_with_one_line(process, cli_env, name):
    cache = Path(cli_env["XDG_CACHE_HOME"]) / "jetforge" / "package-cache"
    path = special(cache / name, "fifo")
    result = process("cache", "serve", "--background", "--port", "0", timeout=30)
    one_line_error(result, 2, f"{path}: is a FIFO, not a regular file")


def test_a_credentials_file_that_is_not_user_and_password_is_one_line(jetforge, cli_env):
    cache = Path(cli_env["XDG_CACHE_HOME"]) / "jetforge" / "package-cache"
    cache.mkdir(parents=True)
    (cache / "credentials").write_text("")
    result = jetforge("cache", "serve", "--background", "--port", "0")
    one_line_error(result, 2, "credentials: not one 'user:password' line")


@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_docs_check_against_a_special_file_is_one_line(process, tmp_path, kind):
    page = special(tmp_path / "packages.md", kind)
    result = process(
        "docs", "packages", "--output", str(page), "--check", shell=BOUNDED, timeout=60
    )
    one_line_error(result, 2, str(page), KINDS[kind])


def test_docs_output_onto_a_device_is_refused_and_the_device_kept(jetforge, tmp_path):
    result = jetforge("docs", "packages", "--output", "/dev/full")
    one_line_error(result, 2, "--output: /dev/full: is a character device (name a regular file")
    assert Path("/dev/full").is_char_device()


def test_docker_config_files_that_are_special_or_odd_are_skipped(tmp_path):
    from jetforge.host.credentials import CredentialStore

    fifo = special(tmp_path / "fifo" / "config.json", "fifo")
    odd = tmp_path / "odd" / "config.json"
    odd.parent.mkdir()
    odd.write_text(json.dumps({"credHelpers": ["x"], "auths": "y", "credsStore": "../../bin/sh"}))
    asked: list[list[str]] = []

    def runner(argv, **_):  # type: ignore[no-untyped-def]
        asked.append(list(argv))
        raise AssertionError("no helper should run")

    found: list[object] = []
    for config in (fifo, odd):
        store = CredentialStore({"DOCKER_CONFIG": str(config.parent)}, runner)
        worker = threading.Thread(
            target=lambda s=store: found.append(s.lookup("r.example")), daemon=True
        )
        worker.start()
        worker.join(10)
        assert not worker.is_alive(), f"blocked on {config}"
    assert found == [None, None]
    assert asked == []


def test_host_files_that_are_special_files_are_no_facts(tmp_path):
    root = tmp_path / "root"
    special(root / "etc" / "nv_tegra_release", "fifo")
    special(root / "proc" / "device-tree" / "model", "zero")
    script = (
        "from pathlib import Path\n"
        "from jetforge.host.process import Completed\n"
        "from jetforge.host.platform import detect_platform\n"
        "def runner(argv, **_): return Completed(tuple(argv), 127, '', '')\n"
        f"print(detect_platform({{}}, runner=runner, root=Path({str(root)!r})).arch)\n"
    )
    done = subprocess.run(
        ["bash", "-c", f'{BOUNDED}; exec {sys.executable} -c "$0"', script],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
