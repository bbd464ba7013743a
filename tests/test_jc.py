"""jetson-containers ("jc") package trees: format detection, jc's reading of headers,
config scripts and JSON configs, the compatibility module, jc's resolution conventions and
plans. The trees under tests/fixtures/jc are written for these tests in jc's format."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from jetforge.core.requirement import RequirementSyntaxError, parse_jc_predicate
from jetforge.discovery.jc.compat import jetson_containers as compat

JC = Path(__file__).parent / "fixtures" / "jc"
LIB = JC / "lib" / "packages"
HOSTILE = JC / "hostile" / "packages"
NO_SHIPPED = {
    "JETFORGE_SHIPPED_PACKAGES": "",
    "JETFORGE_DOCKER": "/nonexistent/docker",  # plans without an engine: the same anywhere
}


@pytest.fixture
def jc(jetforge):  # type: ignore[no-untyped-def]
    """``jetforge`` on the jc fixture library only (CUDA 12.8 unless a test says else)."""

    def call(*argv: str, env: dict[str, str] | None = None, tree: Path = LIB):  # type: ignore[no-untyped-def]
        return jetforge(*argv, "--package-dirs", str(tree), env={**NO_SHIPPED, **(env or {})})

    return call


def names(result) -> list[str]:  # type: ignore[no-untyped-def]
    return result.stdout.split()


def chain(jc, *argv: str, env: dict[str, str] | None = None) -> list[str]:  # type: ignore[no-untyped-def]
    result = jc("build", "--simulate", "--json", *argv, env=env)
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)["chain"]


# --- reading -----------------------------------------------------------------------------


def test_lib_lists_every_variant_available_on_x86(jc):
    result = jc("list", "--target", "x86_64-cu128")
    assert result.code == 0, result.stderr
    assert names(result) == [
        "build-essential",
        "bundle",
        "cudalike:12.8",
        "cudalike:13.0",
        "cudalike:13.0-samples",  # '>=38' holds off Jetson; its cudalike:13.0 is the x86 one
        "greeter",
        "latest:1.0.0",
        "numpy",
        "python:3.10",
        "python:3.11",
        "python:3.12",
        "python:3.14",
        "torchext:0.1-torchlike:2.0",
        "torchext:0.2-torchlike:2.1",
        "torchlike:2.0",
        "torchlike:2.0-all",
        "torchlike:2.0-builder",
        "torchlike:2.1",
        "torchlike:2.1-all",
        "torchlike:2.1-builder",
    ]


def test_jetson_gets_the_jetson_variants(jc):
    listed = names(jc("list", "--target", "jp5"))
    assert "l4tonly" in listed  # requires '<36': true on L4T 35
    assert "python:3.8" in listed
    assert "python:3.14" in listed  # '>=34'
    assert "cudalike:12.8" not in listed  # x86_64 only
    listed = names(jc("list", "--target", "jp6"))
    assert "cudalike:12.6" in listed
    assert "cudalike:12.6-samples" in listed
    assert "l4tonly" not in listed
    assert "python:3.8" not in listed


def test_l4t_predicates_compare_with_jc_s_off_jetson_release(jc):
    # jc takes L4T 39.1.0 off Jetson: '<36' is false there, '>=38' true, '==36.*' false.
    result = jc("list", "--all", "--target", "sbsa-cu130")
    lines = dict(
        line.split("\t", 1) if "\t" in line else (line, "") for line in result.stdout.splitlines()
    )
    assert "requires <36" in lines["l4tonly"]
    assert lines["cudalike:13.0"] == ""  # '>=38' and aarch64 on SBSA
    assert "requires ==36.*" in lines["cudalike:12.6"]


def test_show_has_jc_keys_and_the_autodetected_test(jc):
    result = jc("show", "build-essential", "--json", "--target", "x86_64-cu128")
    (shown,) = json.loads(result.stdout)
    assert shown["format"] == "jc"
    assert shown["buildkit_device"] == "nvidia.com/gpu=all"
    assert shown["test"] == ["test.sh"]  # found by name
    assert shown["requires"] == [">=32.6"]  # jc's default requirement


def test_json_config_file_defines_a_meta_package(jc):
    (shown,) = json.loads(jc("show", "bundle", "--json").stdout)
    assert shown["dockerfile"] is None
    assert shown["depends"] == ["build-essential", "numpy"]
    assert shown["group"] == "meta"


def test_config_scripts_get_platform_constants_and_cross_package_imports(jc):
    (shown,) = json.loads(jc("show", "torchlike:2.0", "--json", "--target", "sbsa-cu130").stdout)
    args = shown["build_args"]
    assert args["IS_SBSA"] == "True"
    assert args["PYTHON_TAG"] == "cp312"  # from packages.lang.python.version
    assert args["TORCH_CUDA_ARCH_LIST"].startswith("8.0;9.0")
    (x86,) = json.loads(jc("show", "torchlike:2.0", "--json", "--target", "x86_64-cu128").stdout)
    assert x86["build_args"]["IS_SBSA"] == "False"


def test_network_at_scan_time_is_refused_quickly_with_a_warning(jc):
    started = time.monotonic()
    result = jc("list", "latest*", "--target", "x86_64-cu128")
    assert time.monotonic() - started < 15  # the script's own retries would sleep 450 s
    assert names(result) == ["latest:1.0.0"]  # github_latest_tag gave None: the fallback
    warning = next(line for line in result.stderr.splitlines() if "net/latest" in line)
    assert "config scripts do not get" in warning or "no network" in warning


def test_a_jc_directory_is_detected_inside_a_jetforge_tree(jc, tmp_path):
    tree = tmp_path / "mixed"
    shutil.copytree(LIB / "build" / "build-essential", tree / "build-essential")
    (tree / "plain").mkdir()
    (tree / "plain" / "Dockerfile").write_text(
        "#---\n# name: plain\n# depends: build-essential\n# default: true\n#---\nFROM x\n"
    )
    result = jc("show", "--json", tree=tree)
    assert result.code == 0, result.stderr
    formats = {item["name"]: item["format"] for item in json.loads(result.stdout)}
    assert formats == {"build-essential": "jc", "plain": "jetforge"}


def test_a_variant_may_use_another_package_s_dockerfile_of_the_tree(jc, tmp_path):
    # jc's zed and isaac-ros scripts point variants at the ros package's Dockerfile.
    tree = tmp_path / "packages"
    (tree / "ros").mkdir(parents=True)
    (tree / "ros" / "Dockerfile.extras").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n")
    (tree / "zed").mkdir()
    (tree / "zed" / "Dockerfile").write_text("#---\n# name: zed\n#---\nFROM x\n")
    (tree / "zed" / "config.py").write_text(
        "import os\n"
        "extras = dict(package, name='zed:ros', dockerfile=os.path.join("
        "os.path.dirname(package['path']), 'ros', 'Dockerfile.extras'))\n"
        "package = [package, extras]\n"
    )
    (tree / "bad").mkdir()
    (tree / "bad" / "Dockerfile").write_text("#---\n# name: bad\n#---\nFROM x\n")
    (tree / "bad" / "config.py").write_text("package['dockerfile'] = '/etc/hostname'\n")
    result = jc("list", "--package-format", "jc", tree=tree)
    assert result.stdout.split() == ["zed", "zed:ros"]
    assert "bad: dockerfile '/etc/hostname' is outside the package directory" in result.stderr


def test_header_only_jc_tree_needs_package_format_jc(jc, tmp_path):
    tree = tmp_path / "private"
    shutil.copytree(LIB / "apps" / "greeter", tree / "greeter")
    (plain,) = json.loads(jc("show", "greeter", "--json", tree=tree).stdout)
    assert plain["format"] == "jetforge"
    assert plain["test"] == []
    result = jc("show", "greeter", "--json", "--package-format", "jc", tree=tree)
    (read_as_jc,) = json.loads(result.stdout)
    assert read_as_jc["format"] == "jc"
    assert read_as_jc["test"] == ["test.py"]


def test_config_file_entry_sets_the_format(jetforge, tmp_path):
    tree = tmp_path / "private"
    shutil.copytree(LIB / "apps" / "greeter", tree / "greeter")
    (tmp_path / "jetforge").mkdir()
    (tmp_path / "jetforge" / "jetforge.toml").write_text(
        f'package_dirs = [{{path = "{tree}", format = "jc"}}]\n'
    )
    env = {**NO_SHIPPED, "XDG_CONFIG_HOME": str(tmp_path)}
    (shown,) = json.loads(jetforge("show", "greeter", "--json", env=env).stdout)
    assert shown["format"] == "jc"


def test_bad_package_format_entry_is_one_line(jetforge, tmp_path):
    (tmp_path / "jetforge").mkdir()
    (tmp_path / "jetforge" / "jetforge.toml").write_text(
        'package_dirs = [{path = ".", format = "jetson"}]\n'
    )
    result = jetforge("list", env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert result.code == 2
    assert "format 'jetson'" in result.stderr
    assert "auto | jetforge | jc" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_jc_checkout_replaces_the_shipped_tree(jetforge):
    result = jetforge("list", "--package-dirs", str(LIB), "--target", "x86_64-cu128")
    assert result.code == 0, result.stderr
    listed = names(result)
    assert "build-essential" in listed
    assert "torchlike:2.0" in listed
    assert "cmake" not in listed  # a shipped package
    assert "is also defined" not in result.stderr


def test_jetforge_format_stays_strict(jc, tmp_path):
    tree = tmp_path / "strict"
    (tree / "thing").mkdir(parents=True)
    (tree / "thing" / "Dockerfile").write_text("#---\n# name: thing\n# depnds: [x]\n#---\nFROM x\n")
    result = jc("list", "--strict", tree=tree)
    assert result.code == 2
    assert "unknown key 'depnds' (did you mean 'depends'?)" in result.stderr


# --- hostile config scripts ---------------------------------------------------------------


def test_hostile_scripts_are_errors_of_their_own_packages(jc):
    started = time.monotonic()
    result = jc("list", "--json", env={"JETFORGE_CONFIG_TIMEOUT": "2"}, tree=HOSTILE)
    assert time.monotonic() - started < 20
    assert result.code == 0
    # print() in a script does not reach jetforge's output; chdir does not lose packages
    assert [item["name"] for item in json.loads(result.stdout)] == [
        "chdir",
        "good",
        "prints",
        "reads",
    ]
    errors = result.stderr
    assert "loops/config.py: config script did not finish within 2 s" in errors
    assert "exits/config.py:4: config script called exit(3)" in errors
    assert "kills/config.py: config script ended the process that ran it" in errors
    assert "raises/config.py:4: config script raised ValueError: no such version 1.0" in errors
    assert "typo/Dockerfile:3: unknown key 'depnds' (did you mean 'depends'?)" in errors
    assert "corrupt/Dockerfile: key 'depends' must be a string or a list of strings" in errors
    assert "badlist/config.py: 'package' holds a str" in errors
    assert "Traceback" not in errors


def test_hostile_tree_with_strict_exits_2(jc):
    result = jc("list", "--strict", env={"JETFORGE_CONFIG_TIMEOUT": "2"}, tree=HOSTILE)
    assert result.code == 2
    assert "7 package definition(s) have errors" in result.stderr


# --- resolution ---------------------------------------------------------------------------


def test_bare_name_means_the_variant_with_that_alias(jc):
    # python:3.12 carries the alias 'python' on x86_64 (Python 3.12), not the highest 3.14
    assert chain(jc, "numpy", "--target", "x86_64-cu128") == [
        "build-essential",
        "python:3.12",
        "numpy",
    ]
    assert chain(jc, "numpy", "--target", "jp6") == ["build-essential", "python:3.10", "numpy"]


def test_environment_selects_through_the_scripts(jc):
    # version.py reads TORCHLIKE_VERSION; jetforge's own <BASE>_VERSION rule stays out
    assert chain(jc, "torchlike", "--target", "x86_64-cu128")[-1] == "torchlike:2.0"
    got = chain(jc, "torchlike", "--target", "x86_64-cu128", env={"TORCHLIKE_VERSION": "2.1"})
    assert got[-1] == "torchlike:2.1"


def test_layered_variants_of_one_base_share_a_chain(jc):
    assert chain(jc, "torchlike:2.0-all", "--target", "x86_64-cu128") == [
        "build-essential",
        "python:3.12",
        "torchlike:2.0",
        "torchext:0.1-torchlike:2.0",
        "numpy",
        "bundle",
        "torchlike:2.0-all",
    ]
    assert chain(jc, "cudalike:samples", "--target", "jp6") == [
        "build-essential",
        "cudalike:12.6",
        "cudalike:12.6-samples",
    ]


def test_bare_dependency_follows_a_layered_pin(jc):
    # torchlike:2.1-all wants 'torchext' (bare): the one built for torchlike 2.1, even
    # though the default torchext (for 2.0 on CUDA 12.8) is another; jc would put both
    # torchlike versions in the chain.
    got = chain(jc, "torchlike:2.1-all", "--target", "x86_64-cu128")
    assert "torchext:0.2-torchlike:2.1" in got
    assert [name for name in got if name.startswith("torchlike:")] == [
        "torchlike:2.1",
        "torchlike:2.1-all",
    ]


def test_two_versions_of_one_base_are_a_conflict(jc):
    result = jc("build", "--simulate", "torchlike:2.0", "torchlike:2.1", "--target", "x86_64-cu128")
    assert result.code == 2
    assert "no single variant of torchlike satisfies both" in result.stderr


def test_explain_names_the_alias_rule(jc):
    result = jc("explain", "numpy", "--target", "x86_64-cu128")
    assert "python:3.12" in result.stdout
    assert "carries the alias 'python'" in result.stdout


# --- plans --------------------------------------------------------------------------------


def plan(jc, *argv: str, env: dict[str, str] | None = None) -> dict:  # type: ignore[no-untyped-def]
    result = jc("build", "--simulate", "--json", "--target", "x86_64-cu128", *argv, env=env)
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)


def test_jc_stages_get_jc_s_build_args_only(jc):
    stages = {stage["package"]: stage for stage in plan(jc, "numpy")["stages"]}
    numpy = stages["numpy"]["build_args"]
    assert numpy == {
        "BASE_IMAGE": stages["python:3.12"]["image"],
        "NVIDIA_DRIVER_CAPABILITIES": "all",
        "NUMPY_EXTRAS": "['blas', 'lapack']",
        "NUMPY_FLAG": "True",
        "NUMPY_NOTHING": "None",
        "NUMPY_LEVEL": "3",
    }
    assert stages["python:3.12"]["build_args"]["PYTHON_MARK"] == "True"


def test_jc_tests_run_the_way_jc_runs_them(jc):
    stages = {stage["package"]: stage for stage in plan(jc, "numpy")["stages"]}
    assert stages["numpy"]["tests"] == ["test.py", "test.sh --quick"]
    from jetforge.core.plan import argv_for_jc_test

    assert argv_for_jc_test("test.py") == ("/bin/bash", "-c", "python3 /test/test.py")
    assert argv_for_jc_test("test.sh --quick") == (
        "/bin/bash",
        "-c",
        "/bin/bash /test/test.sh --quick",
    )
    assert argv_for_jc_test("run-me arg") == ("/bin/bash", "-c", "/test/run-me arg")


def test_second_colon_in_a_name_gives_a_valid_tag(jc):
    document = plan(jc, "torchext:0.1-torchlike:2.0")
    assert document["final_image"] == "torchext:0.1-torchlike_2.0-x86_64-cu128-24.04"


def test_no_github_api_edits_the_dockerfile_and_the_key(jc):
    plain = {s["package"]: s for s in plan(jc, "torchlike:2.0")["stages"]}
    edited = {s["package"]: s for s in plan(jc, "torchlike:2.0", "--no-github-api")["stages"]}
    assert plain["torchlike:2.0"]["edits"] == []
    assert edited["torchlike:2.0"]["edits"] == ["no-github-api"]
    assert plain["torchlike:2.0"]["key"] != edited["torchlike:2.0"]["key"]
    assert plain["python:3.12"]["key"] == edited["python:3.12"]["key"]  # nothing to edit


def test_edit_dockerfile_comments_out_github_api_lines():
    from jetforge.core.dockerfile import edit_dockerfile

    text = (
        "FROM x\nADD https://api.github.com/repos/a/b/git/refs/heads/main /tmp/v.json\nRUN true\n"
    )
    edited = edit_dockerfile(text, ("no-github-api",)).splitlines()
    assert edited[2].startswith("# jetforge --no-github-api: ADD https://api.github.com/")
    assert edited[3] == "RUN true"
    assert edit_dockerfile(text, ()).splitlines()[2].startswith("ADD https://api.github.com/")


# --- the compatibility module and jc predicates -------------------------------------------


def test_update_dependencies_merges_by_base_name():
    assert compat.update_dependencies(["pytorch", "numpy"], ["pytorch:2.8"]) == [
        "pytorch:2.8",
        "numpy",
    ]
    assert compat.update_dependencies(["a"], "b") == ["a", "b"]
    assert compat.update_dependencies(["a"], None) == ["a"]


def test_package_depends_flattens_its_arguments():
    package = {"depends": ["torch", "opencv"]}
    compat.package_depends(package, "torch:2.6", ["opencv:4.11", "whisper"])
    assert package["depends"] == ["torch:2.6", "opencv:4.11", "whisper"]


def test_package_requires_adds_an_arch_unless_one_is_named():
    assert compat.package_requires({"requires": ">=36"}, system_arch="aarch64") == {
        "requires": [">=36", "aarch64"]
    }
    assert compat.package_requires({"requires": ["x86_64"]}, system_arch="aarch64") is None
    shared: list[str] = [">=35"]
    compat.package_requires({"requires": shared}, requires="<38")
    assert shared == [">=35", "<38"]  # extended in place, as jc does


@pytest.mark.parametrize(
    ("text", "kind", "word"),
    [
        ("aarch64", "arch", "aarch64"),
        ("!=x86_64", "arch", "x86_64"),
        ("==arm64", "arch", "aarch64"),
        ("tegra-aarch64", "arch", "tegra"),
        ("22.04", "distro", "ubuntu"),
        (">=cu126", "cuda", ""),
        (">=34.1.0", "l4t", ""),
        ("==r36.*", "l4t", ""),
    ],
)
def test_jc_predicates_parse(text, kind, word):
    from packaging.version import Version

    predicate = parse_jc_predicate(text, Version("39.1.0"))
    assert predicate.kind == kind
    assert predicate.word == word


def test_bad_jc_predicate_names_what_is_valid():
    from packaging.version import Version

    with pytest.raises(RequirementSyntaxError, match="'>=36', '==35"):
        parse_jc_predicate("newer than 36", Version("39.1.0"))


def test_two_workers_read_the_same_as_one():
    from jetforge.discovery.jc.checkout import jc_setup
    from jetforge.discovery.jc.scan import JcReader, needs_worker
    from jetforge.discovery.scripts import ScriptHost
    from jetforge.discovery.walk import iter_package_dirs
    from jetforge.errors import DefinitionError
    from jetforge.host.platform import detect_platform

    platform = detect_platform({}, target="x86_64-cu128")
    directories = [*iter_package_dirs(LIB, jc=True), *iter_package_dirs(HOSTILE, jc=True)]
    env = {"JETFORGE_CONFIG_TIMEOUT": "2"}

    def read_all(lanes: int, *, collect: bool = False) -> list[object]:
        found: list[object] = []
        setup = jc_setup(platform, env, [LIB, HOSTILE])
        with ScriptHost(platform, env, setup, lanes=lanes) as host:
            host.expect([("jc", d, f) for d, f in directories if needs_worker(d, f)])
            reader = JcReader(host)
            for directory, files in directories:
                if collect:  # answers (and a worker's death) taken before they are asked
                    time.sleep(0.05)
                    host.collect()
                try:
                    found.append(sorted(spec.name for spec in reader.read(directory, files)[0]))
                except DefinitionError as error:
                    found.append(error.problem)
        return found

    one = read_all(1)
    assert "config script ended the process that ran it" in one
    assert read_all(2) == one
    assert read_all(1, collect=True) == one
