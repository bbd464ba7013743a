"""Values a hostile test run gave jetforge (the red team's values round): each one is one
``jetforge: error:`` line naming the file, key, variable or option and what is valid, or
the right behaviour, never a traceback.

1. A data directory inside jetforge's state or cache directory (a container could forge
   the SBOM or poison the discovery index), empty (the config file's directory), or with
   ':', ',' or control characters (split by the engine's volume syntax); one that cannot
   be made.
2. A config file nested too deeply for the TOML reader, and URLs that urllib.parse cannot
   parse (``cache_urls``, ``pypi_url`` and their variables).
3. ``JETFORGE_CONFIG_TIMEOUT`` that is no time limit (``inf``, ``1e400``, ``abc``, ``0``).
4. Empty path values (``--locked "$LOCK"`` with LOCK unset built without pins): every
   option that names a file or directory refuses one as it is parsed.
5. ``build --simulate`` passing what ``build`` refuses (registries, JETFORGE_BUILD_MODE),
   a registry port that is none, and ``autotag --no-build`` searching for an unknown name.
6. The package cache's command line and bundles: a port or host that is none, a store
   that is no directory, a manifest nested too deeply, names that fill memory.
7. Terminal control sequences in a hostile package tree's text (``show``, ``list``).
8. A lockfile for another platform or base image: both named, and how to refresh it.
"""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import pytest

from jetforge.core.lockdata import parse_lock_data
from jetforge.core.lockfile import plan_mismatch, platform_mismatch
from jetforge.engine.table import build_modes
from tests.adversarial.conftest import one_line_error, write_config
from tests.test_lock import GOLDEN_TREE, execute, golden_plan, make_engine, read_lock

# --- 1. the data directory -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "inside"),
    [("XDG_STATE_HOME", "jetforge/sbom"), ("XDG_CACHE_HOME", "jetforge/index")],
)
def test_a_data_dir_inside_jetforges_own_directories_is_refused(
    jetforge, fake_engine, cli_env, variable, inside
):
    data = Path(cli_env[variable]) / inside
    config = write_config(cli_env, f'data_dir = "{data}"\n')
    result = jetforge("run", "--dry-run", "img", env=fake_engine({}))
    what = "state" if variable == "XDG_STATE_HOME" else "cache"
    one_line_error(result, 2, f"{config}: 'data_dir' ({data}) is inside jetforge's {what}")


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("{config_dir}", "holds jetforge's configuration directory"),
        ("{socket}", "is not a directory"),
        ("/var/lib/docker/volumes/x", "is inside the engines' storage /var/lib/docker"),
        ("{home}/.ssh", "holds the credentials directory"),
        ("{home}/.docker/keep", "is inside the credentials directory"),
    ],
)
def test_a_data_dir_that_hands_containers_the_engine_or_the_configuration_is_refused(
    jetforge, fake_engine, cli_env, tmp_path, value, named
):
    """The data directory is mounted read-write in every test and run container: never
    jetforge's configuration (which says what code runs), a file such as a daemon's
    socket, the engines' storage or the user's credentials."""
    socket_file = tmp_path / "docker.sock"
    socket_file.write_text("")
    config = write_config(cli_env, "")
    given = value.format(config_dir=config.parent, socket=socket_file, home=cli_env["HOME"])
    config.write_text(f'data_dir = "{given}"\n')
    result = jetforge("run", "--dry-run", "img", env=fake_engine({}))
    one_line_error(result, 2, f"{config}: 'data_dir'", named)


def test_a_data_dir_beside_a_projects_config_file_is_taken(
    jetforge, fake_engine, tmp_path, monkeypatch
):
    project = tmp_path / "project"
    project.mkdir()
    (project / "jetforge.toml").write_text('data_dir = "data"\n')
    monkeypatch.chdir(project)
    result = jetforge("run", "--dry-run", "img", env=fake_engine({}))
    assert result.code == 0, result.stderr
    assert f"{project / 'data'}:/data" in result.stdout


def test_a_data_dir_that_leads_into_the_state_directory_through_a_link_is_refused(
    jetforge, fake_engine, cli_env, tmp_path
):
    state = Path(cli_env["XDG_STATE_HOME"]) / "jetforge"
    state.mkdir(parents=True)
    (tmp_path / "innocent").symlink_to(state)
    config = write_config(cli_env, f'data_dir = "{tmp_path / "innocent" / "sbom"}"\n')
    result = jetforge("run", "--dry-run", "img", env=fake_engine({}))
    one_line_error(result, 2, f"{config}: 'data_dir'", "is inside jetforge's state directory")


def test_a_default_data_dir_inside_the_state_directory_names_the_variable(
    jetforge, fake_engine, cli_env
):
    env = {**fake_engine({}), "XDG_DATA_HOME": str(Path(cli_env["XDG_STATE_HOME"]) / "jetforge")}
    result = jetforge("run", "--dry-run", "img", env=env)
    one_line_error(result, 2, "XDG_DATA_HOME: the data directory", "is inside jetforge's state")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "'' is empty"),
        ("  ", "'  ' is empty"),
        ("/x/d:b", "'/x/d:b' holds ':' or ','"),
        ("/x/d,readonly", "'/x/d,readonly' holds ':' or ','"),
        ("/x/d\\nb", "'/x/d\\nb' holds a control character"),
        ("/x/d\\u001bb", "'/x/d\\x1bb' holds a control character"),
    ],
)
def test_a_data_dir_an_engine_cannot_mount_is_one_line(
    jetforge, fake_engine, cli_env, value, problem
):
    config = write_config(cli_env, f'data_dir = "{value}"\n')
    result = jetforge("run", "--dry-run", "img", env=fake_engine({}))
    one_line_error(result, 2, f"{config}: 'data_dir' {problem}", "valid: a directory of its own")
    assert "--volume" not in result.stdout


def test_a_default_data_dir_an_engine_cannot_mount_names_the_variable(
    jetforge, fake_engine, tmp_path
):
    env = {**fake_engine({}), "XDG_DATA_HOME": str(tmp_path / "a:b")}
    result = jetforge("run", "--dry-run", "img", env=env)
    one_line_error(result, 2, "XDG_DATA_HOME: the data directory", "holds ':' or ','")


def test_a_data_dir_that_cannot_be_made_is_one_line(jetforge, fake_engine, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    env = {**fake_engine({}), "XDG_DATA_HOME": str(blocker)}
    result = jetforge("run", "img", env=env)
    one_line_error(result, 2, f"cannot make {blocker / 'jetforge' / 'data'}", "XDG_DATA_HOME")


@pytest.mark.skipif(not Path("/sys").is_dir(), reason="needs the read-only /sys")
def test_a_read_only_data_home_is_one_line(run, tree, fake_engine):
    # /sys refuses a new directory even to root, as a read-only file system does.
    result = run(tree({}), "run", "img", env={**fake_engine({}), "XDG_DATA_HOME": "/sys"})
    one_line_error(result, 2, "XDG_DATA_HOME: the data directory: cannot make /sys/jetforge/data")


# --- 2. the config file's structure and URLs -------------------------------------------------


def test_a_config_file_nested_too_deeply_is_one_line(run, tree, cli_env):
    config = write_config(cli_env, "a = " + "[" * 100_000 + "]" * 100_000 + "\n")
    result = run(tree({}), "list")
    one_line_error(result, 2, f"{config}: arrays or tables nested too deeply")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('cache_urls = ["http://user:pass@[::1"]', "'http://***@[::1' is not a URL"),
        ('cache_urls = ["http://mirror.lan:99999/simple/"]', "is not a URL (port 99999 is not a"),
        ('cache_urls = ["http://mirror.lan:0/simple/"]', "(port 0 is not a number 1-65535)"),
        ('cache_urls = ["http://mirror.lan:port/simple/"]', "is not a URL (port port is not a"),
        ('cache_urls = ["mirror.lan/simple/"]', "does not start with http: or https:"),
        ('cache_urls = ["http:///simple/"]', "has no host"),
        ('cache_urls = ["http://a b/"]', "holds whitespace"),
        ('pypi_url = "ftp://pypi.example/simple/"', "'pypi_url' 'ftp://pypi.example/simple/'"),
    ],
)
def test_a_url_of_the_config_file_is_parsed_when_read(run, tree, cli_env, text, fragment):
    config = write_config(cli_env, text + "\n")
    result = run(tree({}), "list")
    one_line_error(result, 2, str(config), fragment, "valid: an http:// or https:// index URL")
    assert "pass" not in result.stderr


def test_doctor_reports_a_config_url_it_cannot_parse(jetforge, cli_env):
    config = write_config(cli_env, 'cache_urls = ["http://user:pass@[::1"]\n')
    result = jetforge("doctor", env={"JETFORGE_DOCKER": "/nonexistent/docker"})
    assert "Traceback" not in result.stderr
    assert "internal error" not in result.stderr
    assert f"{config}: 'cache_urls' entry 'http://***@[::1' is not a URL" in result.stdout


@pytest.mark.parametrize(
    ("variable", "value"),
    [("JETFORGE_CACHE_URLS", "http://[::1"), ("JETFORGE_PYPI_URL", "http://pypi:0x50/simple/")],
)
def test_a_url_variable_is_checked_by_build_and_simulate_alike(
    jetforge, run, tree, fake_engine, variable, value
):
    root = tree({"a/Dockerfile": "#---\n# name: a\n#---\nARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"})
    for argv in (("build", "--simulate", "a"), ("build", "a")):
        result = run(root, *argv, env={**fake_engine({}), variable: value})
        one_line_error(result, 2, f"{variable}", f"'{value}' is not a URL")
    doctor = jetforge("doctor", env={"JETFORGE_DOCKER": "/nonexistent/docker", variable: value})
    assert f"{variable}" in doctor.stdout
    assert "internal error" not in doctor.stderr


# --- 3. the config scripts' time limit -------------------------------------------------------

SCRIPTED = {
    "s/Dockerfile": "#---\n# name: s\n#---\nARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n",
    "s/config.py": "package['notes'] = 'scripted'\n",
}


@pytest.mark.parametrize(
    "value", ["inf", "1e400", "99999999999999999999", "3601", "abc", "-1", "0", "nan", "5 s"]
)
def test_a_config_timeout_that_is_no_time_limit_is_a_usage_error(run, tree, value):
    root = tree(SCRIPTED)
    for argv in (("list", "--no-index"), ("list",)):
        result = run(root, *argv, env={"JETFORGE_CONFIG_TIMEOUT": value})
        one_line_error(
            result, 2, f"JETFORGE_CONFIG_TIMEOUT={value!r} is not a time limit", "at most 3600"
        )


@pytest.mark.parametrize("value", ["", "7", "0.5", "3600"])
def test_a_config_timeout_in_range_is_taken(run, tree, value):
    result = run(tree(SCRIPTED), "show", "s", env={"JETFORGE_CONFIG_TIMEOUT": value})
    assert result.code == 0, result.stderr
    assert "scripted" in result.stdout


# --- 4. empty paths ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (("build", "--locked", "", "a"), "--locked"),
        (("build", "--simulate", "--locked", "", "a"), "--locked"),
        (("build", "--lock", "", "a"), "--lock"),
        (("build", "--logs", "", "a"), "--logs"),
        (("build", "--ca-bundle", "", "a"), "--ca-bundle"),
        (("build", "--package-dirs", "", "a"), "--package-dirs"),
        (("lock", "--file", "", "a"), "--file"),
        (("lock", "--logs=", "a"), "--logs"),
        (("bake", "--output", "", "a"), "-o/--output"),
        (("list", "--package-dirs="), "--package-dirs"),
        (("bootstrap", "--keyring", ""), "--keyring"),
        (("docs", "packages", "--output", ""), "--output"),
        (("doctor", "--host-root", ""), "--host-root"),
        (("cache", "serve", "--dir", ""), "--dir"),
        (("cache", "status", "--dir", ""), "--dir"),
        (("cache", "export", ""), "FILE"),
        (("cache", "export", "x.tar", "--dir", ""), "--dir"),
        (("cache", "import", ""), "FILE"),
        (("cache", "import", "x.tar", "--dir", " "), "--dir"),
    ],
)
def test_an_empty_path_is_refused_as_the_command_line_is_parsed(jetforge, argv, option):
    result = jetforge(*argv, env={"JETFORGE_DOCKER": "/nonexistent/docker"})
    assert result.code == 2, result.stderr
    last = result.stderr.splitlines()[-1]
    assert f"error: argument {option}: an empty value names no file or directory" in last
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("option", ["--package-dirs", "--host-root"])
def test_run_refuses_an_empty_path_of_its_own_options(run, tree, option):
    result = run(tree({}), "run", option, "", "img")
    one_line_error(result, 2, f"run: {option}: an empty value names no file or directory")


def test_lock_names_its_own_option_for_a_lockfile_it_cannot_write(run, tree, tmp_path):
    root = tree({"a/Dockerfile": "#---\n# name: a\n#---\nARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"})
    result = run(root, "lock", "--file", str(tmp_path), "a")
    one_line_error(result, 2, f"--file: {tmp_path}")
    assert "--lock" not in result.stderr


# --- 5. build --simulate refuses what build refuses ------------------------------------------


def error_line(result) -> str:  # type: ignore[no-untyped-def]
    """The one ``jetforge: error:`` line of a failed command."""
    return next(line for line in result.stderr.splitlines() if line.startswith("jetforge: error:"))


@pytest.mark.parametrize(
    ("env", "config", "fragment"),
    [
        ({"JETFORGE_REGISTRIES": "registry.lan/A b"}, "", "JETFORGE_REGISTRIES"),
        ({"JETFORGE_REGISTRIES": "http://[::1"}, "", "JETFORGE_REGISTRIES"),
        ({}, 'registries = ["registry.lan/A b"]\n', "registries"),
        (
            {},
            'registries = ["127.0.0.1:99999/team"]\n',
            "'registries' of the config file: registry '127.0.0.1:99999/team': port 99999 is "
            "not a number 1-65535",
        ),
        (
            {"JETFORGE_REGISTRIES": "127.0.0.1:0/team"},
            "",
            "JETFORGE_REGISTRIES: registry '127.0.0.1:0/team': port 0 is not a number 1-65535",
        ),
        ({"JETFORGE_BUILD_MODE": "bogus"}, "", "JETFORGE_BUILD_MODE=bogus is not valid"),
    ],
)
def test_simulate_refuses_exactly_what_build_refuses(
    run, tree, fake_engine, cli_env, env, config, fragment
):
    if config:
        write_config(cli_env, config)
    root = tree({"a/Dockerfile": "#---\n# name: a\n#---\nARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"})
    results = [
        run(root, *argv, env={**fake_engine({}), **env})
        for argv in (("build", "a"), ("build", "--simulate", "a"))
    ]
    for result in results:
        one_line_error(result, 2, fragment)
    assert error_line(results[0]) == error_line(results[1])


NUMPY = "#---\n# name: numpy\n#---\nARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"


@pytest.mark.parametrize("extra", [("--no-build", "--no-pull"), ("--no-build",), ()])
def test_autotag_of_a_name_with_no_image_and_no_package_says_so(run, tree, fake_engine, extra):
    """An image may hold a package the tree does not have (autotag finds it); a name
    with neither is a typo until shown otherwise: the closest names, exit 2."""
    root = tree({"numpy/Dockerfile": NUMPY})
    result = run(root, "autotag", "nmupy", *extra, env=fake_engine({}))
    one_line_error(result, 2, "unknown package 'nmupy' (did you mean numpy?)")
    assert "no compatible image for" not in result.stderr


def test_autotag_refuses_a_bad_registry_before_any_search(run, tree, fake_engine):
    root = tree({"numpy/Dockerfile": NUMPY})
    env = {**fake_engine({}), "JETFORGE_REGISTRIES": "127.0.0.1:99999/team"}
    result = run(root, "autotag", "numpy", "--no-build", env=env)
    one_line_error(result, 2, "JETFORGE_REGISTRIES: registry '127.0.0.1:99999/team': port 99999")
    assert "no compatible" not in result.stderr


# --- 6. the package cache ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (("--port", "70000"), "argument --port: '70000' is not a port (valid: 1 to 65535"),
        (("--port", "-1"), "argument --port: '-1' is not a port"),
        (("--port", "0x50"), "argument --port: '0x50' is not a port"),
        (("--host", ""), "argument --host: '' is not an address to listen on"),
        (("--host", "127.0.0.1\n--x"), "argument --host: '127.0.0.1\\n--x' is not an address"),
        (("--host", "a b"), "argument --host: 'a b' is not an address"),
    ],
)
def test_cache_serve_refuses_a_port_or_host_that_is_none(jetforge, argv, fragment):
    result = jetforge("cache", "serve", *argv)
    assert result.code == 2, result.stderr
    assert fragment in result.stderr.splitlines()[-1]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("action", ["export", "import"])
def test_a_cache_store_that_is_no_directory_is_one_line(jetforge, tmp_path, action):
    blocker = tmp_path / "store"
    blocker.write_text("")
    result = jetforge("cache", action, str(tmp_path / "b.tar"), "--dir", str(blocker))
    one_line_error(result, 2, f"--dir: {blocker} is not a directory")
    assert not (tmp_path / "b.tar").exists()


def test_cache_export_of_a_store_that_is_not_there_is_one_line(jetforge, tmp_path):
    result = jetforge("cache", "export", str(tmp_path / "b.tar"), "--dir", str(tmp_path / "no"))
    one_line_error(result, 2, f"--dir: {tmp_path / 'no'} is not a directory")


def bundle_of(path: Path, *headers: bytes, manifest: bytes = b"{}") -> Path:
    """A tar file of raw ``headers`` (each a member's header blocks) and a manifest."""
    info = tarfile.TarInfo("manifest.json")
    info.size = len(manifest)
    padding = b"\0" * (-len(manifest) % tarfile.BLOCKSIZE)
    tail = info.tobuf(tarfile.GNU_FORMAT) + manifest + padding + b"\0" * 1024
    path.write_bytes(b"".join(headers) + tail)
    return path


def long_name_header(length: int) -> bytes:
    """The GNU long-name header blocks of a member named with ``length`` bytes, without
    the member's own header."""
    blocks = tarfile.TarInfo("w" * length).tobuf(tarfile.GNU_FORMAT)
    return blocks[: -tarfile.BLOCKSIZE]


def pax_header(length: int) -> bytes:
    """The pax header blocks of an empty member with a comment of ``length`` bytes, and
    the member's own header."""
    info = tarfile.TarInfo("p")
    info.pax_headers = {"comment": "x" * length}
    return info.tobuf(tarfile.PAX_FORMAT)


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ((long_name_header(8 << 20),), "extended header"),
        ((pax_header(8 << 20),), "extended header"),
        ((long_name_header(200),) * 5000, "recursion"),
    ],
    ids=["long-name", "pax-header", "chained-long-names"],
)
def test_a_bundle_whose_names_would_fill_memory_is_one_line(jetforge, tmp_path, headers, fragment):
    bundle = bundle_of(tmp_path / "b.tar", *headers)
    target = tmp_path / "target"
    result = jetforge("cache", "import", str(bundle), "--dir", str(target))
    one_line_error(result, 2, f"{bundle} is not a jetforge cache bundle", fragment)
    assert not target.exists() or not any(target.iterdir())


@pytest.mark.parametrize(
    "content",
    [b"[" * 100_000 + b"]" * 100_000, b'{"format": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"],
)
def test_a_bundle_manifest_nested_too_deeply_is_one_line(jetforge, tmp_path, content):
    bundle = bundle_of(tmp_path / "b.tar", manifest=content)
    result = jetforge("cache", "import", str(bundle), "--dir", str(tmp_path / "t"))
    one_line_error(result, 2, "manifest.json nests deeper than Python's JSON reader goes")


def test_a_bundle_of_random_bytes_is_one_line(jetforge, tmp_path):
    bundle = tmp_path / "b.tar.gz"
    bundle.write_bytes(b"\x1f\x8b" + os.urandom(4096))
    result = jetforge("cache", "import", str(bundle), "--dir", str(tmp_path / "t"))
    assert result.code in (1, 2)
    one_line_error(result, result.code, str(bundle))


# --- 7. control sequences ----------------------------------------------------------------

HOSTILE = {
    "h/Dockerfile": (
        '#---\n# name: h\n# notes: "clear \\e[2J\\e]0;owned\\a C1 \\x9b31m \\u202eend"\n#---\n'
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"
    ),
    "bad/Dockerfile": '#---\n# name: "bad\\e]0;owned\\a"\n#---\nFROM x\n',
    "worse/config.py": "def configure(package, platform):\n    raise ValueError('\\x1b[2J')\n",
    "worse/Dockerfile": "#---\n# name: worse\n#---\nFROM x\n",
}


def is_control(char: str) -> bool:
    return (ord(char) < 32 and char not in "\n\t") or 127 <= ord(char) < 160 or char == "\u202e"


@pytest.mark.parametrize("argv", [("show", "h"), ("list", "--all")])
def test_a_package_trees_control_sequences_never_reach_the_terminal(run, tree, argv):
    result = run(tree(HOSTILE), *argv)
    assert result.code == 0, result.stderr
    if argv[0] == "show":
        assert "clear \\x1b[2J\\x1b]0;owned\\x07 C1 \\x9b31m \\u202eend" in result.stdout
    if argv[0] == "list":  # warnings: an invalid name, a script's exception
        assert "bad\\x1b]0;owned\\x07" in result.stderr
        assert "\\x1b[2J" in result.stderr
    assert not any(map(is_control, result.stdout + result.stderr))


# --- 8. lockfile messages ----------------------------------------------------------------


@pytest.fixture(scope="module")
def golden_lock_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The lockfile of the golden chain (core, frame:2.0, accel, bundle), built once."""
    where = tmp_path_factory.mktemp("golden-lock")
    execute(golden_plan(), make_engine(), where)
    path = where / "lock.json"
    path.write_text(json.dumps(read_lock(where)))
    return path


def test_a_lock_for_another_platform_names_both_platforms(run, golden_lock_file):
    result = run(
        GOLDEN_TREE, "build", "--simulate", "--target", "jp6", "--locked", str(golden_lock_file),
        "bundle",
    )  # fmt: skip
    one_line_error(
        result, 2, "it pins the platform cuda-12.8 ubuntu-24.04 x86_64, this build is for ",
        "aarch64", "lock this one with 'jetforge lock'",
    )  # fmt: skip


def test_a_lock_for_a_platform_of_the_same_label_names_the_field_that_differs():
    pinned = {"label": "cuda-12.8 ubuntu-24.04 x86_64", "gpu_archs": [89]}
    problem = platform_mismatch(pinned, {**pinned, "gpu_archs": [90]})
    assert "this build is for cuda-12.8 ubuntu-24.04 x86_64 (gpu_archs: [89] there, [90] here)" in (
        problem
    )


def test_a_base_image_mismatch_says_how_to_refresh_the_lock(golden_lock_file):
    locked = parse_lock_data(json.loads(golden_lock_file.read_text()))
    problem = plan_mismatch(locked, golden_plan(), "sha256:" + "c" * 64)
    assert problem.startswith(f"it pins the base image {locked.base.reference} with id")
    assert "'jetforge lock --file FILE --upgrade base'" in problem


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["stages"][2].update(variant="nosuch"), "stages[2].variant: nosuch is not"),
        (lambda d: d.update(stages=d["stages"][:1]), "stages: 1 stages for the chain's 4"),
        (lambda d: d.update(stages=[]), "stages: 0 stages for the chain's 4"),
        (lambda d: d["stages"][3].update(index=9), "stages[3].index: 9 is not bundle's 4"),
    ],
)
def test_a_lockfile_whose_stages_are_not_its_chain_is_refused(
    run, golden_lock_file, tmp_path, edit, message
):
    """A stage left out of a lockfile, or named otherwise than the chain, would be built
    unpinned: the file is refused as it is read, naming the entry."""
    data = json.loads(golden_lock_file.read_text())
    edit(data)
    path = tmp_path / "lock.json"
    path.write_text(json.dumps(data))
    result = run(GOLDEN_TREE, "build", "--simulate", "--locked", str(path), "bundle")
    one_line_error(result, 2, message)


CURL = {"name": "curl", "version": "8.5.0", "architecture": "amd64"}  # stages[0]'s


def _append(entries: list[dict[str, str]], entry: dict[str, str]) -> None:
    entries.append(entry)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: _append(
                d["stages"][2]["installed"]["python"],
                {"name": "numpy", "version": "1.0", "environment": "/opt/venv"},
            ),
            "stages[2].installed.python[1]: numpy in /opt/venv is listed twice",
        ),
        (
            lambda d: _append(d["stages"][0]["installed"]["deb"], CURL),
            "stages[0].installed.deb[1]: curl is listed twice",
        ),
        (
            lambda d: _append(
                d["stages"][0]["installed"]["deb"],
                {**CURL, "version": "7.0", "architecture": "i386"},
            ),
            "stages[0].installed.deb[1]: curl is listed twice",
        ),
        (
            lambda d: d.update(build_mode="evil"),
            "build_mode: 'evil' is not a build mode (buildx, buildkit, legacy, podman)",
        ),
    ],
)
def test_a_lockfile_with_a_pin_twice_or_an_unknown_build_mode_is_refused(
    run, golden_lock_file, tmp_path, edit, message
):
    """Two pins for one package in one stage would leave the build to whichever comes last,
    and a build mode no engine has is no build's: the file is refused as it is read."""
    data = json.loads(golden_lock_file.read_text())
    edit(data)
    path = tmp_path / "lock.json"
    path.write_text(json.dumps(data))
    result = run(GOLDEN_TREE, "build", "--simulate", "--locked", str(path), "bundle")
    one_line_error(result, 2, message)


def test_a_multi_arch_package_is_one_pin_for_its_architectures(golden_lock_file):
    data = json.loads(golden_lock_file.read_text())
    data["stages"][0]["installed"]["deb"].append({**CURL, "architecture": "i386"})
    assert len(parse_lock_data(data).stages[0].added.debs) == 2


@pytest.mark.parametrize("mode", build_modes())
def test_every_engine_build_mode_is_a_lockfile_build_mode(golden_lock_file, mode):
    data = {**json.loads(golden_lock_file.read_text()), "build_mode": mode}
    assert parse_lock_data(data, build_modes()).build_mode == mode
