"""Every command in-process, with its output and exit code (docs/cli.md).

The shipped packages/ tree is always searched too, so assertions filter the output to
the fixture tree's names or ask with patterns.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

from jetforge import __version__
from jetforge.core.names import name_order
from jetforge.discovery.discover import discover
from jetforge.host.context import META_DOCKERFILE
from jetforge.host.platform import detect_platform
from jetforge.host.platform_data import target_names
from jetforge.ops.workspace import shipped_packages
from tests.conftest import FIXTURES

TREES = Path(__file__).parent / "fixtures" / "trees"
GOLDEN = Path(__file__).parent / "golden"
# No CA bundle from the host: plans then have no generated trust stage. The shipped tree
# is left out, so fixture names (pytorch, ros, ...) never clash with shipped packages.
NO_TRUST = {
    "SSL_CERT_FILE": "",
    "REQUESTS_CA_BUNDLE": "",
    "PIP_CERT": "",
    "JETFORGE_SHIPPED_PACKAGES": "",
    # No engine answers: plans are the engine-less ones the golden files hold.
    "JETFORGE_DOCKER": "/nonexistent/docker",
    "JETFORGE_PODMAN": "/nonexistent/podman",
}


@pytest.fixture
def cli(jetforge):  # type: ignore[no-untyped-def]
    """``jetforge`` with no host CA bundle in the environment."""

    def call(*argv: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        return jetforge(*argv, env={**NO_TRUST, **(env or {})})

    return call


def tree(*names: str) -> list[str]:
    return ["--package-dirs", ",".join(str(TREES / name) for name in names)]


def lines(text: str) -> list[str]:
    return text.splitlines()


@cache
def shipped(target: str = "") -> frozenset[str]:
    """The variants of the shipped packages/ tree available on ``target`` (default: every
    variant, on any target)."""
    targets = [target] if target else ["jp5", "jp6", "jp7", "x86_64-cu128", "sbsa-cu130"]
    return frozenset(
        variant.name
        for name in targets
        for variant in discover([shipped_packages()], detect_platform({}, target=name)).variants
        if variant.is_available or not target
    )


def own(text: str) -> list[str]:
    """Output lines that are not the shipped packages."""
    return [line for line in text.splitlines() if line.split("\t")[0] not in shipped()]


def assert_one_line_error(result, message: str) -> None:  # type: ignore[no-untyped-def]
    assert result.code == 2, result.stderr
    assert lines(result.stderr) == [f"jetforge: error: {message}"]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


# --- help and usage -----------------------------------------------------------------------

COMMANDS = ("list", "show", "build", "graph", "explain", "platform", "bootstrap")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(cli, command):
    result = cli(command, "--help")
    assert result.code == 0
    assert result.stdout.startswith(f"usage: jetforge {command}")
    assert result.stderr == ""


def test_version(cli):
    result = cli("--version")
    assert (result.code, result.stdout) == (0, f"jetforge {__version__}\n")


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        ((), "the following arguments are required: COMMAND"),
        (("list", "--bogus"), "unrecognized arguments: --bogus"),
        (("graph",), "the following arguments are required: PACKAGE"),
        (("graph", "x", "--format", "png"), "argument --format: invalid choice: 'png'"),
    ],
)
def test_bad_arguments_exit_2_with_usage_and_no_traceback(cli, argv, error):
    result = cli(*argv)
    assert result.code == 2
    assert error in lines(result.stderr)[-1]
    assert result.stderr.startswith("usage: jetforge")
    assert "Traceback" not in result.stderr


def test_unknown_target_is_a_one_line_usage_error(cli):
    result = cli("list", "--target", "jp66")
    assert result.code == 2
    assert lines(result.stderr) == [
        f"jetforge: error: unknown target 'jp66' (did you mean 'jp6'? "
        f"valid: {', '.join(target_names())})"
    ]


# --- list ---------------------------------------------------------------------------------


WITH_SHIPPED = {"JETFORGE_SHIPPED_PACKAGES": str(shipped_packages())}


def test_list_prints_sorted_names_including_the_shipped_packages(cli):
    result = cli("list", "--target", "jp6", *tree("selection"), env=WITH_SHIPPED)
    assert result.code == 0
    assert lines(result.stdout) == sorted(lines(result.stdout), key=name_order)
    assert shipped("jp6")
    assert set(lines(result.stdout)) >= shipped("jp6")
    assert own(result.stdout) == [
        "chooser:1.0",
        "chooser:2.0",
        "chooser:3.0",
        "multi-word:1",
        "multi-word:2",
        "user",
        "versioned:1.2",
        "versioned:1.9",
        "versioned:1.10",
        "versioned:edge",
    ]
    assert result.stderr == ""


def test_list_patterns_match_names_and_aliases(cli):
    result = cli("list", "ros*", "*viewer", "--target", "jp6", *tree("wildcard"))
    assert lines(result.stdout) == ["ros:humble", "ros:jazzy", "ros-tools", "rviz"]
    result = cli("list", "ros:*", "--target", "jp6", *tree("wildcard"))
    assert lines(result.stdout) == ["ros:humble", "ros:jazzy"]


def test_list_pattern_without_match_is_one_line(cli):
    result = cli("list", "nothing*", "--target", "jp6", *tree("wildcard"))
    assert_one_line_error(result, "no package matches 'nothing*'")


def test_package_dirs_are_repeatable_and_comma_separated(cli):
    repeated = cli(
        "list", "z*", "ros:*", "--target", "jp6", "--package-dirs", str(TREES / "pins"),
        "--package-dirs", str(TREES / "wildcard"),
    )  # fmt: skip
    comma = cli("list", "z*", "ros:*", "--target", "jp6", *tree("pins", "wildcard"))
    assert lines(repeated.stdout) == lines(comma.stdout)
    assert lines(comma.stdout) == ["ros:humble", "ros:jazzy", "zlib:1", "zlib:2", "zmid", "ztop"]


def test_skip_packages(cli):
    result = cli(
        "list", "--target", "jp6", *tree("wildcard", "pins"), "--skip-packages", "ros:j*,rviz",
        "--skip-packages", "z*1",
    )  # fmt: skip
    # ztop depends on the skipped zlib:1, so it is no longer offered either.
    assert own(result.stdout) == ["ros:humble", "ros-tools", "zlib:2", "zmid"]


GATED_LISTS = {
    "jp5": ["accel:jp5", "jetson-only", "old-python", "on-jetson"],
    "jp6": ["accel:jp6", "flavoured:1.0", "flavoured:2.0", "jetson-only", "on-jetson"],
    "x86_64-cu128": ["accel:x86", "flavoured:1.0", "flavoured:2.0"],
}


@pytest.mark.parametrize("target", GATED_LISTS)
def test_platform_gated_variants_per_target(cli, target):
    result = cli("list", "--target", target, *tree("gated"))
    assert (result.code, own(result.stdout)) == (0, GATED_LISTS[target])


def test_list_all_shows_unavailable_variants_with_the_reason(cli):
    result = cli("list", "accel*", "on-jetson", "--all", "--target", "x86_64-cu128", *tree("gated"))
    platform = "(platform: cuda-12.8 ubuntu-24.04 x86_64)"
    assert lines(result.stdout) == [
        f"accel:jp5\t(unavailable: requires tegra {platform})",
        f"accel:jp6\t(unavailable: requires tegra {platform})",
        f"accel:jp7\t(unavailable: requires tegra, >=cu130 {platform})",
        f"accel:sbsa\t(unavailable: requires sbsa {platform})",
        "accel:x86",
        "on-jetson\t(unavailable: depends on 'jetson-only', which is not available on this "
        "platform)",
    ]


def test_list_json(cli):
    result = cli("list", "accel:*", "--json", "--all", "--target", "jp6", *tree("gated"))
    data = json.loads(result.stdout)
    assert [(item["name"], item["available"]) for item in data] == [
        ("accel:jp5", False),
        ("accel:jp6", True),
        ("accel:jp7", False),
        ("accel:sbsa", False),
        ("accel:x86", False),
    ]
    jp6 = data[1]
    assert jp6["requires"] == ["tegra", ">=r36", "<r38"]
    assert (jp6["base_name"], jp6["tag"], jp6["group"]) == ("accel", "jp6", "gated")
    assert jp6["path"] == str(TREES / "gated" / "accel")
    assert jp6["unavailable_reason"] == ""
    assert data[0]["unavailable_reason"].startswith("requires ==r35.*")


def test_broken_config_py_is_reported_and_the_rest_still_listed(cli):
    result = cli("list", "--target", "jp6", *tree("config_raises", "pins"))
    assert result.code == 0
    assert own(result.stdout) == ["survivor", "zlib:1", "zlib:2", "zmid", "ztop"]
    script = TREES / "config_raises" / "raiser" / "config.py"
    assert lines(result.stderr) == [
        f"jetforge: warning: {script}:6: config script raised KeyError: '99.9'; "
        "package left out (a definition error)"
    ]


BROKEN = {
    "bad_yaml": "broken/Dockerfile:4: malformed YAML",
    "unknown_key": "typo/Dockerfile:4: unknown key 'dependz' (did you mean 'depends'?)",
    "wrong_type": "badtype/Dockerfile:4: key 'default' must be true or false",
    "bad_predicate": "badpred/Dockerfile: badpred: bad platform predicate 'gpu>=big'",
    "config_raises": "raiser/config.py:6: config script raised KeyError",
    "config_wrong_type": "wrongret/config.py:4: configure() returned dict",
    "unclosed_header": "noclose/Dockerfile:2: header has no closing '#---' line",
    "duplicate_names": "second/dup/Dockerfile: variant 'twin' is also defined in",
}


@pytest.mark.parametrize("scenario", BROKEN)
def test_broken_package_is_one_warning_exit_0_or_exit_2_with_strict(cli, scenario):
    relaxed = cli("list", "--target", "jp6", *tree(scenario), env=WITH_SHIPPED)
    assert relaxed.code == 0
    [warning] = lines(relaxed.stderr)
    assert warning.startswith(f"jetforge: warning: {TREES / scenario}/{BROKEN[scenario]}")
    assert set(lines(relaxed.stdout)) >= shipped("jp6")

    strict = cli("list", "--strict", "--target", "jp6", *tree(scenario), env=WITH_SHIPPED)
    assert strict.code == 2
    assert lines(strict.stderr) == [
        warning,
        "jetforge: error: 1 package definition(s) have errors",
    ]
    assert "Traceback" not in strict.stderr


def test_other_commands_summarise_broken_packages_in_one_line(cli):
    result = cli("graph", "zmid", "--target", "jp6", *tree("pins", "bad_yaml", "unknown_key"))
    assert result.code == 0
    assert lines(result.stderr) == [
        "jetforge: warning: 2 package definition(s) have errors; "
        "'jetforge list --strict' shows them"
    ]


def test_packages_from_the_config_file(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "jetforge.toml").write_text(f'package_dirs = ["{TREES / "pins"}"]\n')
    result = cli("list", "z*", "--target", "jp6")
    assert lines(result.stdout) == ["zlib:1", "zlib:2", "zmid", "ztop"]


def test_missing_package_dir_is_an_error_on_the_command_line(cli, tmp_path):
    assert_one_line_error(
        cli("list", "--target", "jp6", *tree("pins"), "--package-dirs", str(tmp_path / "gone")),
        f"--package-dirs: '{tmp_path / 'gone'}' is not a directory",
    )


def test_missing_package_dir_of_the_config_file_is_one_warning(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "jetforge.toml"
    config.write_text(f'package_dirs = ["gone", "{TREES / "pins"}"]\n')
    result = cli("list", "z*", "--target", "jp6")
    assert result.code == 0
    assert lines(result.stdout) == ["zlib:1", "zlib:2", "zmid", "ztop"]
    assert result.stderr == (
        f"jetforge: warning: {config}: package_dirs: '{tmp_path / 'gone'}' is not a "
        "directory; searched without it\n"
    )


def test_bad_config_file_is_a_one_line_usage_error(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "jetforge.toml").write_text('package_dir = ["x"]\n')
    assert_one_line_error(
        cli("list", "--target", "jp6"),
        f"{tmp_path / 'jetforge.toml'}: unknown key 'package_dir' (did you mean 'package_dirs'?)",
    )


# --- show ---------------------------------------------------------------------------------


def test_show_prints_every_known_field(cli):
    result = cli("show", "rviz", "--target", "jp6", *tree("wildcard"))
    assert result.code == 0
    rviz = TREES / "wildcard" / "rviz"
    assert lines(result.stdout) == [
        "name:               rviz",
        "base_name:          rviz",
        "alias:              ros-viewer",
        "group:              robots",
        f"path:               {rviz}",
        f"source:             {rviz / 'Dockerfile'}",
        "depends:            ros:humble",
        "dockerfile:         Dockerfile",
        "available:          True",
    ]


def test_show_separates_variants_and_includes_unavailable_ones(cli):
    result = cli("show", "accel:jp5", "core", "--target", "x86_64-cu128", *tree("gated", "golden"))
    blocks = result.stdout.split("\n\n")
    assert [block.splitlines()[0] for block in blocks] == [
        "name:               accel:jp5",
        "name:               core",
    ]
    assert "available:          False" in blocks[0]
    assert "build_args:         CORE_LEVEL=3, CORE_FAST=true, PYTHON_VERSION=3.99" in blocks[1]
    assert "test:               test.sh, echo core ok" in blocks[1]


def test_show_json(cli):
    result = cli("show", "bundle", "--json", "--target", "jp6", *tree("golden"))
    [bundle] = json.loads(result.stdout)
    assert bundle["depends"] == ["frame", "accel"]
    assert (bundle["dockerfile"], bundle["prefix"], bundle["postfix"]) == (None, "demo", "full")
    assert bundle["test"] == ["sh -c 'test -f /frame.txt'"]


def test_show_reads_notes_from_a_file(cli, tmp_path):
    package = tmp_path / "documented"
    package.mkdir()
    (package / "package.yaml").write_text("notes: NOTES.md\ndocs: inline text\n")
    (package / "NOTES.md").write_text("From the file.\n")
    [data] = json.loads(cli("show", "documented", "--json", "--package-dirs", str(tmp_path)).stdout)
    assert (data["notes"], data["docs"]) == ("From the file.", "inline text")


def test_show_unknown_pattern_exits_2(cli):
    assert_one_line_error(
        cli("show", "zz*", "--target", "jp6", *tree("pins")),
        "unknown package 'zz*'; 'jetforge list' shows what exists",
    )


# --- graph and explain --------------------------------------------------------------------


GRAPHS = {
    "text": "zlib:1\nzmid    <- zlib:1\nztop    <- zmid, zlib:1\n",
    "dot": """\
digraph jetforge {
  rankdir=LR;
  "zlib:1";
  "zmid";
  "ztop";
  "ztop" -> "zmid";
  "zmid" -> "zlib:1";
  "ztop" -> "zlib:1";
}
""",
    "mermaid": """\
graph LR
  n1["zlib:1"]
  n2["zmid"]
  n3["ztop"]
  n3 --> n2
  n2 --> n1
  n3 --> n1
""",
}


@pytest.mark.parametrize("fmt", GRAPHS)
def test_graph_formats(cli, fmt):
    result = cli("graph", "ztop", "--format", fmt, "--target", "jp6", *tree("pins"))
    assert (result.code, result.stdout, result.stderr) == (0, GRAPHS[fmt], "")


def test_graph_json(cli):
    result = cli("graph", "ztop", "--format", "json", "--target", "jp6", *tree("pins"))
    assert json.loads(result.stdout) == {
        "nodes": ["zlib:1", "zmid", "ztop"],
        "edges": [["ztop", "zmid"], ["zmid", "zlib:1"], ["ztop", "zlib:1"]],
    }


def test_graph_default_format_is_text(cli):
    result = cli("graph", "zmid", "zlib:1", "--target", "jp6", *tree("pins"))
    assert result.stdout == "zlib:1\nzmid    <- zlib:1\n"


@pytest.mark.parametrize("order", [("zmid", "zlib:1"), ("zlib:1", "zmid")])
def test_pins_in_both_orders_give_the_same_plan(cli, order):
    result = cli("build", "--simulate", "--json", *order, "--target", "jp6", *tree("pins"))
    assert json.loads(result.stdout)["chain"] == ["zlib:1", "zmid"]


def test_explain(cli):
    result = cli("explain", "torchvision", "torch:2.6", "--target", "jp6", *tree("alias"))
    assert result.code == 0
    assert lines(result.stdout) == [
        "pytorch:2.6: pinned by 'torch:2.6' (from the command line)",
        "  wanted as 'torch:2.6', requested on the command line",
        "  wanted as 'torch', required by torchvision",
        "  rejected pytorch:2.8: excluded by 'torch:2.6' (from the command line)",
        "torchvision: first by name",
        "  wanted as 'torchvision', requested on the command line",
    ]


def test_explain_names_the_environment_variable(cli):
    result = cli(
        "explain", "chooser", "--target", "jp6", *tree("selection"),
        env={"CHOOSER_VERSION": "1.0"},
    )  # fmt: skip
    assert lines(result.stdout)[0] == "chooser:1.0: CHOOSER_VERSION=1.0"
    assert "  rejected chooser:2.0: less preferred (CHOOSER_VERSION=1.0 wins)" in result.stdout


# --- resolution errors through the CLI: exit 2, one line ------------------------------------


def test_unknown_package_suggests_close_names(cli):
    assert_one_line_error(
        cli("graph", "zmd", "--target", "jp6", *tree("pins")),
        "unknown package 'zmd' (did you mean zmid?); 'jetforge list' shows what exists",
    )


def test_conflicting_pins_name_the_requirements_and_who_asked(cli):
    assert_one_line_error(
        cli("build", "--simulate", "ztop", "zlib:2", "--target", "jp6", *tree("pins")),
        "cannot resolve the requested packages; 'zlib:2' (from the command line) and "
        "'zlib:1' (from ztop): no single variant of zlib satisfies both "
        "(available: zlib:1, zlib:2)",
    )


def test_requirement_no_variant_satisfies_on_this_platform(cli):
    assert_one_line_error(
        cli("explain", "accel:jp5", "--target", "jp6", *tree("gated")),
        "cannot resolve the requested packages; 'accel:jp5' (from the command line): "
        "no available variant matches (available: accel:jp6); accel:jp5 requires ==r35.* "
        "(platform: l4t-36.4.0 cuda-12.6 ubuntu-22.04 tegra-aarch64)",
    )


def test_dependency_unavailable_on_this_platform(cli):
    assert_one_line_error(
        cli("graph", "on-jetson", "--target", "x86_64-cu128", *tree("gated")),
        "cannot resolve the requested packages; 'on-jetson' (from the command line): no "
        "variant of on-jetson is available (on-jetson depends on 'jetson-only', which is not "
        "available on this platform)",
    )


def test_version_env_naming_no_variant(cli):
    assert_one_line_error(
        cli(
            "graph", "chooser", "--target", "jp6", *tree("selection"), env={"CHOOSER_VERSION": "9"}
        ),
        "CHOOSER_VERSION=9 names no available variant of chooser "
        "(available: chooser:1.0, chooser:2.0, chooser:3.0)",
    )


def test_cycle(cli, tmp_path):
    for name, dependency in (("loop-a", "loop-b"), ("loop-b", "loop-a")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "package.yaml").write_text(f"depends: [{dependency}]\n")
    assert_one_line_error(
        cli("build", "--simulate", "loop-a", "--package-dirs", str(tmp_path)),
        "dependency cycle: loop-a → loop-b → loop-a",
    )


def test_verbose_shows_the_traceback(cli):
    result = cli("-v", "graph", "zmd", "--target", "jp6", *tree("pins"))
    assert result.code == 2
    assert "Traceback" in result.stderr
    assert lines(result.stderr)[-1].startswith("jetforge: error: unknown package 'zmd'")


# --- platform -----------------------------------------------------------------------------


def test_platform_text_marks_overridden_fields(cli):
    result = cli("platform", "--target", "jp6", env={"CUDA_VERSION": "12.8"})
    assert result.code == 0
    assert lines(result.stdout) == [
        "arch:             aarch64",
        "cuda_arch:        tegra-aarch64",
        "l4t_version:      36.4.0",
        "jetpack_version:  6.1",
        "cuda_version:     12.8  (overridden)",
        "python_version:   3.10",
        "distro:           ubuntu:22.04",
        "gpu_archs:        87",
        "base_image:       ubuntu:22.04",
        "target:           jp6",
        "tag_postfix:      r36.4.0-cu128-22.04",
        "label:            l4t-36.4.0 cuda-12.8 ubuntu-22.04 tegra-aarch64",
    ]


def test_platform_json(cli):
    data = json.loads(cli("platform", "--json", "--target", "x86_64-cu128").stdout)
    assert data["tag_postfix"] == "x86_64-cu128-24.04"
    assert (data["l4t_version"], data["overridden"], data["target"]) == (None, [], "x86_64-cu128")
    debian = json.loads(
        cli("platform", "--json", "--target", "jp6", "--distro", "debian:12").stdout
    )
    assert (debian["distro"], debian["overridden"]) == ("debian:12", ["distro"])


def test_platform_bad_override_is_a_one_line_usage_error(cli):
    result = cli("platform", "--target", "jp6", env={"CUDA_VERSION": "twelve"})
    assert result.code == 2
    assert lines(result.stderr) == [
        "jetforge: error: CUDA_VERSION: 'twelve' is not valid "
        "(valid: a CUDA release such as '12.6', '12.6.77', 'cu126')"
    ]


def test_platform_detection_on_this_host_never_fails(cli):
    result = cli("platform", "--json")
    assert result.code == 0
    assert json.loads(result.stdout)["cuda_arch"] in ("tegra-aarch64", "aarch64-sbsa", "x86_64")


# --- build --simulate ---------------------------------------------------------------------


def normalized_cli_plan(text: str) -> str:
    """``build --simulate --json`` output in the form of the golden plan files."""
    data = json.loads(text)
    for stage in data["stages"]:
        created = stage["labels"]["org.opencontainers.image.created"]
        assert created.endswith("Z")
        stage["labels"]["org.opencontainers.image.created"] = "2026-01-02T03:04:05Z"
        stage["labels"]["jetforge.version"] = "<version>"
        stage["command"] = [
            "org.opencontainers.image.created=2026-01-02T03:04:05Z"
            if word == f"org.opencontainers.image.created={created}"
            else "<version>"
            if word == f"jetforge.version={__version__}"
            else word
            for word in stage["command"]
        ]
    return json.dumps(data, indent=2, ensure_ascii=False).replace(str(TREES / "golden"), "<tree>")


@pytest.mark.parametrize("target", ["jp5", "jp6", "jp7", "x86_64-cu128", "sbsa-cu130"])
def test_build_simulate_json_matches_the_golden_plan(cli, target):
    result = cli("build", "--simulate", "--json", "bundle", "--target", target, *tree("golden"))
    assert result.code == 0, result.stderr
    text = normalized_cli_plan(result.stdout).replace(str(META_DOCKERFILE), "<meta.Dockerfile>")
    assert text + "\n" == (GOLDEN / f"plan-{target}.json").read_text()


def test_build_simulate_text(cli):
    result = cli("build", "--dry-run", "frame:1.0", "--target", "jp6", *tree("golden"))
    assert result.code == 0, result.stderr
    out = lines(result.stdout)
    assert (
        out[0]
        == "# frame:1.0-r36.4.0-cu126-22.04  (l4t-36.4.0 cuda-12.6 ubuntu-22.04 tegra-aarch64)"
    )
    assert out[1].startswith("# 01-core  frame:1.0-r36.4.0-cu126-22.04-core  key ")
    assert out[2].startswith("DOCKER_BUILDKIT=1 docker build --network host --file ")
    assert out[3:5] == ["#   test: test.sh", "#   test: echo core ok"]
    assert out[5].startswith("# 02-frame_1.0  frame:1.0-r36.4.0-cu126-22.04-frame_1.0  key ")
    assert out[7] == "#   test: test.py --quick"
    assert len(out) == 8


def test_build_simulate_options(cli):
    result = cli(
        "build", "--simulate", "--json", "core", "--target", "x86_64-cu128", *tree("golden"),
        "--name", "team/", "--base", "my/base:1", "--build-args", "A=1,B:2",
        "--build-args", "CORE_LEVEL=7", "--build-flags=--pull", "--engine", "podman",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    plan = json.loads(result.stdout)
    [stage] = plan["stages"]
    assert plan["final_image"] == "team/core:x86_64-cu128-24.04"
    assert (plan["base_image"], plan["build_mode"]) == ("my/base:1", "podman")
    assert stage["command"][:2] == ["podman", "build"]
    assert stage["build_flags"] == ["--shm-size", "1g", "--pull"]
    assert list(stage["build_args"].items())[-4:] == [
        ("CORE_LEVEL", "7"),
        ("CORE_FAST", "true"),
        ("A", "1"),
        ("B", "2"),
    ]


def test_build_simulate_with_a_host_ca_bundle_adds_the_trust_stage(jetforge, tmp_path):
    bundle = FIXTURES / "certs" / "test-ca.crt"
    result = jetforge(
        "build", "--simulate", "--json", "core", "--target", "jp6", *tree("golden"),
        env={**NO_TRUST, "SSL_CERT_FILE": str(bundle)},
    )  # fmt: skip
    plan = json.loads(result.stdout)
    assert [stage["package"] for stage in plan["stages"]] == ["ca-trust", "core"]
    assert plan["chain"] == ["core"]


def test_build_alias_requests_build_pytorch_once(cli):
    result = cli(
        "build", "--simulate", "--json", "torch", "torchvision", "--target", "jp6", *tree("alias")
    )
    plan = json.loads(result.stdout)
    assert plan["chain"] == ["pytorch:2.8", "torchvision"]
    assert plan["final_image"] == "torchvision:r36.4.0-cu126-22.04"


def test_build_wildcard_request(cli):
    result = cli("build", "--simulate", "--json", "ros:*", "--target", "jp6", *tree("wildcard"))
    assert json.loads(result.stdout)["chain"] == ["ros:humble"]
    result = cli("build", "--simulate", "--json", "r*", "--target", "jp6", *tree("wildcard"))
    plan = json.loads(result.stdout)
    assert plan["chain"] == ["ros:humble", "ros-tools", "rviz"]
    assert plan["final_image"] == "rviz:r36.4.0-cu126-22.04"


def test_build_skip_packages_changes_the_selection(cli):
    result = cli(
        "build", "--simulate", "--json", "ros", "--target", "jp6", *tree("wildcard"),
        "--skip-packages", "ros:humble",
    )  # fmt: skip
    assert json.loads(result.stdout)["chain"] == ["ros:jazzy"]


@pytest.mark.parametrize(
    ("target", "variant"),
    [
        ("jp5", "accel:jp5"),
        ("jp6", "accel:jp6"),
        ("jp7", "accel:jp7"),
        ("x86_64-cu128", "accel:x86"),
    ],
)
def test_build_chooses_the_platform_gated_variant(cli, target, variant):
    result = cli("build", "--simulate", "--json", "accel", "--target", target, *tree("gated"))
    assert json.loads(result.stdout)["chain"] == [variant]


def test_build_multiple_plans_one_chain_per_package(cli):
    result = cli(
        "build", "--simulate", "--json", "--multiple", "zmid", "zlib:1", "--target", "jp6",
        *tree("pins"),
    )  # fmt: skip
    plans = json.loads(result.stdout)
    assert [plan["chain"] for plan in plans] == [["zlib:2", "zmid"], ["zlib:1"]]
    assert [plan["final_image"] for plan in plans] == [
        "zmid:r36.4.0-cu126-22.04",
        "zlib:1-r36.4.0-cu126-22.04",
    ]


def test_build_list_and_show_packages(cli):
    listed = cli("build", "--list-packages", "ros*", "--target", "jp6", *tree("wildcard"))
    assert (listed.code, lines(listed.stdout)) == (
        0,
        ["ros:humble", "ros:jazzy", "ros-tools", "rviz"],
    )
    listed_all = cli("build", "--list-packages", "--target", "jp6", *tree("pins"))
    assert own(listed_all.stdout) == ["zlib:1", "zlib:2", "zmid", "ztop"]
    shown = cli("build", "--show-packages", "zmid", "--target", "jp6", *tree("pins"))
    assert shown.code == 0
    assert lines(shown.stdout)[0] == "name:               zmid"
    assert "depends:            zlib" in lines(shown.stdout)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("build", "--simulate"), "build: name at least one PACKAGE ('jetforge list' shows them)"),
        (("build", "--json", "zmid"), "build: --json needs --simulate"),
        (
            ("build", "--simulate", "zmid", "--build-args", "NOVALUE"),
            "--build-args: 'NOVALUE' is not K=V (or K:V)",
        ),
        (
            ("build", "--simulate", "zmid", "--ca-bundle", "/nonexistent/ca.crt"),
            "--ca-bundle: no such file: /nonexistent/ca.crt",
        ),
    ],
)
def test_build_usage_errors(cli, argv, message):
    assert_one_line_error(cli(*argv, "--target", "jp6", *tree("pins")), message)


def test_build_with_an_unknown_engine_from_the_environment(cli):
    assert_one_line_error(
        cli(
            "build",
            "--simulate",
            "zmid",
            "--target",
            "jp6",
            *tree("pins"),
            env={"JETFORGE_ENGINE": "rkt"},
        ),
        "unknown engine 'rkt' (valid: docker, podman)",
    )


# --- how main renders what is not a usage error ---------------------------------------------


def test_interrupt_exits_130(cli, monkeypatch):
    from jetforge.cli import listing

    def interrupted(session):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    monkeypatch.setattr(listing, "run", interrupted)
    result = cli("list", "--target", "jp6")
    assert result.code == 130
    assert lines(result.stderr) == ["jetforge: interrupted; nothing that was built is lost"]


def test_failure_exits_1_and_points_at_verbose(cli, monkeypatch):
    from jetforge.cli import listing
    from jetforge.errors import FailureError

    def failing(session):  # type: ignore[no-untyped-def]
        raise FailureError("push to registry.example failed")

    monkeypatch.setattr(listing, "run", failing)
    result = cli("list", "--target", "jp6")
    assert result.code == 1
    assert lines(result.stderr) == [
        "jetforge: error: push to registry.example failed",
        "jetforge: re-run with -v for details",
    ]


def test_internal_error_exits_1_without_a_traceback_unless_verbose(cli, monkeypatch):
    from jetforge.cli import listing

    def broken(session):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    monkeypatch.setattr(listing, "run", broken)
    quiet = cli("list", "--target", "jp6")
    assert quiet.code == 1
    assert lines(quiet.stderr) == [
        "jetforge: internal error: RuntimeError: boom",
        "jetforge: re-run with -v for details",
    ]
    verbose = cli("-v", "list", "--target", "jp6")
    assert verbose.code == 1
    assert "Traceback" in verbose.stderr
