"""What a new user runs into: typos, the first bootstrap, the builder, the order of
versions, help texts and what a build says. Each case asserts the exit code and the line
that tells the user what to do."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.adversarial.conftest import one_line_error

DOCKERFILE = "#---\n# group: dnn\n#---\nARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"
# Discovery order (the file's), text order and version order all differ.
VARIANTS = (
    "cudnn:9.12:\n  requires: x86_64\n"
    "cudnn:9.0:\n  requires: x86_64\n"
    "cudnn:10.1:\n  requires: aarch64\n"
    "cudnn:9.3:\n  requires: x86_64\n"
)
IN_VERSION_ORDER = ["cudnn:9.0", "cudnn:9.3", "cudnn:9.12", "cudnn:10.1"]
X86 = ("--target", "x86_64-cu128")


@pytest.fixture
def versions(tree) -> Path:  # type: ignore[no-untyped-def]
    return tree(
        {
            "cudnn/Dockerfile": DOCKERFILE,
            "cudnn/package.yaml": VARIANTS,
            "cudnn-samples/Dockerfile": DOCKERFILE.replace("dnn", "dnn\n# depends: cudnn"),
        }
    )


# --- versions sort as versions -----------------------------------------------------------


def test_list_sorts_versions_as_versions(run, versions):
    result = run(versions, "list", "--all", *X86)
    assert result.code == 0, result.stderr
    names = [line.split("\t")[0] for line in result.stdout.splitlines()]
    assert names == [*IN_VERSION_ORDER, "cudnn-samples"]


def test_show_sorts_versions_as_versions(run, versions):
    result = run(versions, "show", "cudnn:*", "--json", *X86)
    assert result.code == 0, result.stderr
    assert [variant["name"] for variant in json.loads(result.stdout)] == IN_VERSION_ORDER


def test_explain_lists_the_rejected_variants_in_version_order(run, versions):
    result = run(versions, "explain", "cudnn:9.3", *X86)
    assert result.code == 0, result.stderr
    rejected = [
        line.split()[1].rstrip(":")
        for line in result.stdout.splitlines()
        if line.startswith("  rejected cudnn")
    ]
    assert rejected == ["cudnn:9.0", "cudnn:9.12", "cudnn:10.1"]


def test_unresolvable_pin_lists_the_available_variants_in_version_order(run, versions):
    result = run(versions, "build", "--simulate", "cudnn:9.5", *X86)
    one_line_error(result, 2, "(available: cudnn:9.0, cudnn:9.3, cudnn:9.12)")


def test_version_variable_error_lists_variants_in_version_order(run, versions):
    result = run(versions, "build", "--simulate", "cudnn", *X86, env={"CUDNN_VERSION": "8"})
    one_line_error(result, 2, "CUDNN_VERSION=8", "(available: cudnn:9.0, cudnn:9.3, cudnn:9.12)")


def test_suggestions_keep_the_closest_name_first_and_versions_in_order(run, versions):
    result = run(versions, "build", "--simulate", "cudnnn", *X86)
    one_line_error(
        result, 2, "unknown package 'cudnnn' (did you mean cudnn, cudnn:9.0, cudnn:9.3?)"
    )


# --- did you mean ------------------------------------------------------------------------


@pytest.fixture
def numeric(tree) -> Path:  # type: ignore[no-untyped-def]
    numpy = "#---\n# name: numpy\n#---\nARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"
    return tree({"numpy/Dockerfile": numpy, "pandas/Dockerfile": numpy.replace("numpy", "pandas")})


@pytest.mark.parametrize(
    ("word", "meant"), [("biuld", "build"), ("lsit", "list"), ("autotg", "autotag")]
)
def test_misspelled_command_is_one_line_with_the_likely_one(jetforge, word, meant):
    result = jetforge(word, "numpy")
    assert result.code == 2
    assert result.stderr.splitlines() == [
        f"jetforge: error: unknown command '{word}' (did you mean {meant}?); "
        "'jetforge --help' lists the commands"
    ]
    assert result.stdout == ""


def test_unknown_command_without_a_likely_one_points_at_help(jetforge):
    result = jetforge("-v", "frobnicate")
    assert (result.code, result.stderr.splitlines()) == (
        2,
        ["jetforge: error: unknown command 'frobnicate'; 'jetforge --help' lists the commands"],
    )


def test_show_of_a_misspelled_package_suggests_the_likely_one(run, numeric):
    result = run(numeric, "show", "nump")
    one_line_error(result, 2, "unknown package 'nump' (did you mean numpy?)")
    assert result.stdout == ""


def test_list_pattern_that_matches_nothing_says_so(run, numeric):
    result = run(numeric, "list", "nump")
    one_line_error(result, 2, "no package matches 'nump' (did you mean numpy?)")
    assert result.stdout == ""


def test_list_prints_what_matched_then_the_patterns_that_did_not(run, numeric):
    result = run(numeric, "list", "numpy", "pand*", "zz*", "nump")
    assert result.stdout.splitlines() == ["numpy", "pandas"]
    one_line_error(
        result, 2, "no package matches 'zz*'; no package matches 'nump' (did you mean numpy?)"
    )


def test_list_pattern_of_unavailable_variants_points_at_all(run, versions):
    result = run(versions, "list", "cudnn:10.1", *X86)
    one_line_error(
        result, 2, "no package available on this platform matches 'cudnn:10.1' (1 unavailable"
    )
    assert run(versions, "list", "--all", "cudnn:10.1", *X86).code == 0


def test_autotag_of_a_misspelled_package_builds_nothing_and_asks_nothing(
    run, numeric, fake_engine, monkeypatch
):
    from jetforge.cli import talk

    def ask(*_args: object) -> str:
        raise AssertionError("asked a question")

    monkeypatch.setattr(talk, "_stdin_is_terminal", lambda: True)
    monkeypatch.setattr("builtins.input", ask)
    env = {**fake_engine({}), "JETFORGE_REGISTRIES": ""}
    result = run(numeric, "autotag", "numpi", env=env)
    one_line_error(result, 2, "unknown package 'numpi' (did you mean numpy?)")
    assert "building" not in result.stderr
    assert result.stdout == ""


# --- bootstrap ---------------------------------------------------------------------------

# What mmdebstrap 1.3 prints on Debian 12 for `mmdebstrap noble …` without Ubuntu's keyring.
NO_UBUNTU_KEY = """\
I: running apt-get update...
Get:1 http://archive.ubuntu.com/ubuntu noble InRelease [256 kB]
Err:1 http://archive.ubuntu.com/ubuntu noble InRelease
  The following signatures couldn't be verified because the public key is not available: \
NO_PUBKEY 871920D1991BC93C
W: GPG error: http://archive.ubuntu.com/ubuntu noble InRelease: The following signatures \
couldn't be verified because the public key is not available: NO_PUBKEY 871920D1991BC93C
E: The repository 'http://archive.ubuntu.com/ubuntu noble InRelease' is not signed.
E: apt-get update --error-on=any -oAPT::Status-Fd=<$fd> -oDpkg::Use-Pty=false failed
I: main() received signal PIPE: waiting for setup...
I: removing tempdir /tmp/mmdebstrap.sm2mnMFhgN...
E: mmdebstrap failed to run
"""


def mmdebstrap_says(text: str, code: int = 25):  # type: ignore[no-untyped-def]
    from jetforge.host.process import Completed

    def runner(argv, **_options):  # type: ignore[no-untyped-def]
        return Completed(tuple(argv), code, "", text)

    return runner


def test_bootstrap_without_the_ubuntu_keyring_says_so_before_mmdebstrap(
    jetforge, tmp_path, monkeypatch
):
    from jetforge.ops import bootstrap

    missing = str(tmp_path / "ubuntu-archive-keyring.gpg")
    monkeypatch.setitem(bootstrap.KEYRINGS, "ubuntu", (missing, "ubuntu-keyring"))
    # No engine either: the keyring is checked first, and mmdebstrap never starts.
    result = jetforge(
        "bootstrap", "--distro", "ubuntu:24.04", env={"JETFORGE_DOCKER": "/no/docker"}
    )
    one_line_error(
        result, 2, "ubuntu:24.04 needs Ubuntu's archive keyring, which this host lacks",
        f"({missing})", "apt-get install ubuntu-keyring", "--keyring FILE",
    )  # fmt: skip


def test_bootstrap_keyring_option_must_exist(jetforge, tmp_path):
    result = jetforge("bootstrap", "--distro", "debian:12", "--keyring", str(tmp_path / "no.gpg"))
    one_line_error(result, 2, f"--keyring {tmp_path / 'no.gpg'} does not exist")


def test_bootstrap_passes_the_keyring_to_mmdebstrap(tmp_path):
    from jetforge.core.platform import parse_distro
    from jetforge.ops.bootstrap import plan_bootstrap

    plan = plan_bootstrap(parse_distro("ubuntu:24.04"), None, None, "/k/ubuntu.gpg")
    assert plan.argv(Path("/t/rootfs.tar")) == (
        "mmdebstrap", "--variant=minbase", "--include=ca-certificates",
        "--keyring=/k/ubuntu.gpg", "--", "noble", "/t/rootfs.tar", "http://archive.ubuntu.com/ubuntu",
    )  # fmt: skip


def test_mmdebstrap_missing_a_key_is_the_keyring_error_not_signal_pipe(tmp_path):
    from jetforge.core.platform import parse_distro
    from jetforge.engine.fake import FakeEngine
    from jetforge.errors import UsageError
    from jetforge.ops.bootstrap import bootstrap, plan_bootstrap

    plan = plan_bootstrap(parse_distro("ubuntu:24.04"), None, None)
    with pytest.raises(UsageError) as raised:
        bootstrap(plan, FakeEngine(), tmp_path, runner=mmdebstrap_says(NO_UBUNTU_KEY))
    message = str(raised.value)
    assert "apt cannot verify http://archive.ubuntu.com/ubuntu noble" in message
    assert "key 871920D1991BC93C is missing" in message
    assert "apt-get install ubuntu-keyring" in message
    assert "signal PIPE" not in message


def test_mmdebstrap_failing_otherwise_shows_apt_s_errors(tmp_path):
    from jetforge.core.platform import parse_distro
    from jetforge.engine.fake import FakeEngine
    from jetforge.errors import FailureError
    from jetforge.ops.bootstrap import bootstrap, plan_bootstrap

    output = (
        "I: running apt-get update...\nE: Unable to locate package ca-certificates\n"
        "I: main() received signal PIPE: waiting for setup...\nE: mmdebstrap failed to run\n"
    )
    plan = plan_bootstrap(parse_distro("debian:12"), None, None)
    with pytest.raises(FailureError, match=r"^mmdebstrap failed: Unable to locate package ca-cer"):
        bootstrap(plan, FakeEngine(), tmp_path, runner=mmdebstrap_says(output))


# --- the builder -------------------------------------------------------------------------

OLD_DOCKER = """#!/bin/sh
# A docker client older than 23 without buildx: its builds use the daemon's BuildKit.
case "$1" in
  version) echo '{"Version":"20.10.24"}' ;;
  *) exit 1 ;;
esac
"""


@pytest.fixture
def old_docker_first(tmp_path: Path) -> dict[str, str]:
    """``PATH`` with a docker 20.10 stand-in first."""
    folder = tmp_path / "old-bin"
    folder.mkdir()
    (folder / "docker").write_text(OLD_DOCKER)
    (folder / "docker").chmod(0o755)
    return {"PATH": f"{folder}{os.pathsep}{os.environ.get('PATH', '')}"}


def test_doctor_names_a_docker_program_whose_builds_use_buildkit(
    jetforge, fake_engine, old_docker_first, tmp_path
):
    env = {**fake_engine({}), **old_docker_first, "JETFORGE_REGISTRIES": ""}
    result = jetforge("doctor", "--host-root", str(tmp_path), env=env)
    (builder,) = [line for line in result.stdout.splitlines() if " builder " in line]
    assert builder.startswith("warning  builder   legacy builder, no BuildKit")
    assert "no build secrets, so builds use no package cache" in builder
    old = tmp_path / "old-bin" / "docker"
    assert f"fix: set JETFORGE_DOCKER={old} (docker 20.10.24: the daemon's BuildKit)" in builder


def test_a_build_says_once_which_builder_it_uses_and_its_fix(
    run, numeric, fake_engine, old_docker_first, tmp_path
):
    env = {**fake_engine({}), **old_docker_first}
    result = run(numeric, "build", "numpy", "--base", "nothing:here", env=env)
    builders = [line for line in result.stderr.splitlines() if line.startswith("jetforge: builder")]
    old = tmp_path / "old-bin" / "docker"
    assert builders == [
        "jetforge: builder: legacy builder, no BuildKit: no build secrets, so builds use no "
        "package cache, and no parallel steps (docker clients from 23 on need the buildx plugin "
        f"for BuildKit); fix: set JETFORGE_DOCKER={old} (docker 20.10.24: the daemon's "
        "BuildKit), or install the buildx plugin (package docker-buildx-plugin from Docker's "
        "apt repository, or docker-buildx)"
    ]
    one_line_error(result, 2, "base image 'nothing:here' is neither present nor pullable")


def test_a_forced_legacy_mode_gets_no_other_program_named(
    run, numeric, fake_engine, old_docker_first
):
    env = {**fake_engine({}), **old_docker_first, "JETFORGE_BUILD_MODE": "legacy"}
    result = run(numeric, "build", "numpy", "--base", "nothing:here", env=env)
    (builder,) = [line for line in result.stderr.splitlines() if line.startswith("jetforge: bui")]
    assert "JETFORGE_DOCKER" not in builder


@pytest.mark.engine
def test_a_real_build_names_its_builder_once(jetforge, chain_tree, image_name, tmp_path):
    logs = tmp_path / "logs"
    result = jetforge(
        "build", "--package-dirs", str(chain_tree), "--distro", "debian:12", "--base",
        "debian:12", "--name", image_name, "--logs", str(logs), "--skip-tests", "all", "fd",
        env={"JETFORGE_BUILD_MODE": "legacy"},
    )  # fmt: skip
    assert result.code == 0, result.stderr
    builders = [line for line in result.stderr.splitlines() if line.startswith("jetforge: builder")]
    assert len(builders) == 1, result.stderr
    assert builders[0].startswith("jetforge: builder: legacy builder, no BuildKit")
    assert result.stderr.index("jetforge: builder") < result.stderr.index("] built")


# --- help --------------------------------------------------------------------------------


def iter_parsers(parser, path=()):  # type: ignore[no-untyped-def]
    """Every (sub)command parser with its command words."""
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from iter_parsers(sub, (*path, name))


def test_every_command_s_help_has_a_description():
    from jetforge.cli.commands import COMMANDS
    from jetforge.cli.main import make_parser

    parsers = dict(iter_parsers(make_parser()))
    assert {words[0] for words in parsers} == set(COMMANDS)
    missing = [" ".join(words) for words, parser in parsers.items() if not parser.description]
    assert missing == []


@pytest.mark.parametrize("command", ["list", "build", "platform", "autotag"])
def test_target_help_lists_the_presets(jetforge, command, monkeypatch):
    from jetforge.host.platform_data import target_names

    monkeypatch.setenv("COLUMNS", "1000")  # argparse wraps to it: one line per option
    result = jetforge(command, "--help")
    assert result.code == 0
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("  --target")]
    assert line.endswith(f"platform preset: {', '.join(target_names())}")


# --- what a build says at its end --------------------------------------------------------


def test_stage_counts_say_what_was_built():
    from jetforge.ops.results import StageResult, Summary

    def summary(*states: str) -> Summary:
        stages = [StageResult(n, f"p{n}", "k", "i", state=s) for n, s in enumerate(states)]  # type: ignore[arg-type]
        return Summary("final", stages)

    reused = summary("reused", "reused")
    assert (reused.outcome, reused.stage_counts()) == (
        "reused",
        "all 2 stages reused, nothing built",
    )
    some = summary("reused", "built", "built")
    assert (some.outcome, some.stage_counts()) == ("built", "2 of 3 stages built, 1 reused")
    assert summary("built").stage_counts() == "the stage built"
    assert summary("reused").stage_counts() == "the stage reused, nothing built"


@pytest.mark.engine
def test_a_fully_reused_build_says_reused_and_a_locked_one_names_its_lockfile(
    jetforge, chain_tree, image_name, tmp_path
):
    def build(logs: str, *extra: str):  # type: ignore[no-untyped-def]
        return jetforge(
            "build", "--package-dirs", str(chain_tree), "--distro", "debian:12", "--base",
            "debian:12", "--name", image_name, "--logs", str(tmp_path / logs), *extra, "fb",
        )  # fmt: skip

    lock = tmp_path / "chain.lock.json"
    first = build("one", "--lock", str(lock))
    assert first.code == 0, first.stderr
    final = first.stdout.strip()
    assert f"jetforge: built {final} (" in first.stderr
    again = build("two")
    assert again.code == 0, again.stderr
    assert again.stderr.splitlines()[-1] == (
        f"jetforge: reused {final} (all 3 stages reused, nothing built; logs: {tmp_path / 'two'})"
    )
    locked = build("three", "--locked", str(lock))
    assert locked.code == 0, locked.stderr
    assert locked.stderr.splitlines()[-1] == (
        f"jetforge: reused {final} with the pins of {lock} (all 3 stages reused, nothing "
        f"built; logs: {tmp_path / 'three'})"
    )


# --- Ctrl-C ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stop", "code", "how"), [("int", 130, "interrupted"), ("term", 143, "terminated")]
)
@pytest.mark.parametrize("command", ["build", "lock"])
def test_an_interrupted_build_prints_how_to_resume(
    run, numeric, monkeypatch, command, stop, code, how
):
    from jetforge.cli import build, lock
    from jetforge.errors import TerminatedError

    def stopped(*_args: object):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt if stop == "int" else TerminatedError
        yield

    monkeypatch.setattr(build if command == "build" else lock, "build_chains", stopped)
    result = run(numeric, command, "numpy", "--name", "my-numpy", "--build-args", "A=two words")
    assert result.code == code
    assert result.stderr.splitlines() == [
        f"jetforge: {how}; nothing that was built is lost; resume with: jetforge {command} "
        f"numpy --name my-numpy --build-args 'A=two words' --package-dirs {numeric}"
    ]


def test_an_interrupted_simulation_has_nothing_to_resume(run, numeric, monkeypatch):
    from jetforge.cli import build

    def stopped(*_args: object):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    monkeypatch.setattr(build, "simulated_plans", stopped)
    result = run(numeric, "build", "--simulate", "numpy")
    assert (result.code, result.stderr) == (
        130,
        "jetforge: interrupted; nothing that was built is lost\n",
    )


# --- docs packages --check as the README shows it ----------------------------------------

ROOT = Path(__file__).parents[2]


def test_docs_check_in_a_checkout_compares_its_docs_packages_md(jetforge, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = jetforge("docs", "packages", "--check")
    assert (result.code, result.stderr) == (0, "jetforge: docs/packages.md is current\n")


def test_docs_check_outside_a_checkout_is_one_line(jetforge, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    result = jetforge("docs", "packages", "--check")
    one_line_error(result, 2, f"docs --check: no docs/packages.md in {tmp_path}", "--output FILE")


def test_docs_check_of_a_stale_page_says_how_to_regenerate_it(jetforge, monkeypatch, tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "packages.md").write_text("# Packages\n")
    monkeypatch.chdir(tmp_path)
    result = jetforge("docs", "packages", "--check")
    assert result.code == 1
    assert result.stderr == (
        "jetforge: docs/packages.md is out of date; regenerate it with: "
        "jetforge docs packages --output docs/packages.md\n"
    )


def test_readme_command_table_and_cli_reference_name_every_command():
    from jetforge.cli.commands import COMMANDS

    readme = (ROOT / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| `")]
    assert {row[3:].split()[0].rstrip("`") for row in rows} >= set(COMMANDS)
    reference = (ROOT / "docs" / "cli.md").read_text()
    assert [name for name in COMMANDS if f"\n## {name}\n" not in reference] == []


# --- the engine tests' own helpers -------------------------------------------------------


def test_docker_helper_failure_shows_docker_s_stderr(tmp_path):
    from support.engines import docker

    program = tmp_path / "docker"
    program.write_text(
        "#!/bin/sh\necho 'Unable to find image nothing:here locally' >&2\nexit 125\n"
    )
    program.chmod(0o755)
    with pytest.raises(AssertionError) as raised:
        docker("run", "--rm", "nothing:here", "true", program=str(program))
    assert str(raised.value) == (
        f"{program} run --rm nothing:here true exited 125: "
        "Unable to find image nothing:here locally"
    )


@pytest.mark.engine
def test_docker_helper_failure_shows_the_container_s_stderr(docker_engine):
    from support.engines import docker

    assert docker("run", "--rm", "debian:12", "cat", "/etc/debian_version").startswith("12.")
    with pytest.raises(AssertionError, match=r"exited 3: the stage broke$"):
        docker("run", "--rm", "debian:12", "sh", "-c", "echo the stage broke >&2; exit 3")
