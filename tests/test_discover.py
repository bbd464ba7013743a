"""Discovery over the fixture trees: bad inputs, isolation, determinism, gating
(docs/package-format.md)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from jetforge.discovery.discover import discover
from jetforge.discovery.walk import iter_package_dirs
from jetforge.host.platform import detect_platform

TREES = Path(__file__).parent / "fixtures" / "trees"


@pytest.fixture(scope="module")
def jp6():
    return detect_platform({}, target="jp6")


def names(catalog, *, available_only=True):
    return [v.name for v in catalog.variants if v.is_available or not available_only]


# --- bad inputs: each one becomes a problem naming file, line and cause -------------------

BAD_INPUTS = [
    # (tree, file of the problem, line, exact problem)
    ("bad_yaml", "broken/Dockerfile", 4, "malformed YAML: did not find expected ',' or ']'"),
    ("unknown_key", "typo/Dockerfile", 4, "unknown key 'dependz' (did you mean 'depends'?)"),
    ("wrong_type", "badtype/Dockerfile", 4, "key 'default' must be true or false"),
    (
        "bad_predicate",
        "badpred/Dockerfile",
        None,
        "badpred: bad platform predicate 'gpu>=big' (valid: '>=r36', '<36.4', '>=cu126', "
        "'<cu130', '>=py310', '==ubuntu24.04', '22.04', 'aarch64', '!=x86_64', 'tegra', 'sbsa')",
    ),
    ("config_raises", "raiser/config.py", 6, "config script raised KeyError: '99.9'"),
    (
        "config_wrong_type",
        "wrongret/config.py",
        4,
        "configure() returned dict; expected the package, a list of packages, or None",
    ),
    ("unclosed_header", "noclose/Dockerfile", 2, "header has no closing '#---' line"),
]


@pytest.mark.parametrize(
    ("tree", "source", "line", "problem"), BAD_INPUTS, ids=[case[0] for case in BAD_INPUTS]
)
def test_bad_input_is_one_problem_naming_file_and_line(tree, source, line, problem, jp6):
    catalog = discover([TREES / tree], jp6)
    [error] = catalog.problems
    assert (error.path, error.line, error.problem) == (TREES / tree / source, line, problem)
    where = f"{TREES / tree / source}:{line}" if line else str(TREES / tree / source)
    assert str(error) == f"{where}: {problem}"


def test_broken_config_py_is_isolated_and_the_other_packages_are_found(jp6):
    catalog = discover([TREES / "config_raises"], jp6)
    assert names(catalog) == ["survivor"]
    assert [error.path.name for error in catalog.problems] == ["config.py"]


def test_every_broken_tree_together_still_yields_every_good_package(jp6):
    roots = [TREES / tree for tree, *_ in BAD_INPUTS] + [TREES / "pins"]
    catalog = discover(roots, jp6)
    assert len(catalog.problems) == len(BAD_INPUTS)
    assert names(catalog) == ["survivor", "zlib:1", "zlib:2", "zmid", "ztop"]


def test_duplicate_variant_names_in_two_dirs_name_both_paths(jp6):
    tree = TREES / "duplicate_names"
    catalog = discover([tree], jp6)
    [error] = catalog.problems
    first, second = tree / "first" / "dup" / "Dockerfile", tree / "second" / "dup" / "Dockerfile"
    assert str(error) == f"{second}: variant 'twin' is also defined in {first}"
    # The first definition (in discovery order) is kept.
    assert [v.spec.source for v in catalog.variants] == [first]


def test_config_py_runs_isolated(tmp_path, jp6, monkeypatch):
    tree = tmp_path / "tree"
    shutil.copytree(TREES / "config_raises", tree)
    script = tree / "raiser" / "config.py"
    script.write_text(
        "import os, sys\n"
        "def configure(package, platform):\n"
        "    assert 'platform' not in globals() and 'package' not in globals()\n"
        "    os.chdir('/')\n"
        "    sys.path.insert(0, '/nowhere')\n"
        "    return package.replace(notes=str(os.getpid()))\n"
    )
    monkeypatch.chdir(tmp_path)
    before = list(sys.path)
    catalog = discover([tree], jp6)
    assert catalog.problems == ()
    raiser = catalog.get("raiser")
    assert raiser is not None
    # It ran in a worker process: this process's directory and sys.path are untouched.
    assert raiser.spec.notes != str(os.getpid())
    assert Path.cwd() == tmp_path
    assert sys.path == before
    assert not list(tree.rglob("__pycache__"))


def test_config_py_without_configure_is_a_problem(tmp_path, jp6):
    tree = tmp_path / "tree"
    shutil.copytree(TREES / "config_raises", tree)
    (tree / "raiser" / "config.py").write_text("VALUE = 1\n")
    [error] = discover([tree], jp6).problems
    assert error.problem == "defines no function configure(package, platform)"


def test_config_py_with_a_syntax_error_names_its_line(tmp_path, jp6):
    tree = tmp_path / "tree"
    shutil.copytree(TREES / "config_raises", tree)
    (tree / "raiser" / "config.py").write_text("def configure(package, platform):\n    return (\n")
    [error] = discover([tree], jp6).problems
    assert error.path == tree / "raiser" / "config.py"
    assert error.problem.startswith("config script raised SyntaxError")
    assert error.line is not None


# --- config.py derives variants per platform -----------------------------------------------


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("jp5", {}),  # CUDA 11: configure() returns None, the package is dropped
        (
            "jp6",
            {
                "flavoured:1.0": (("FLAVOUR", "cu12"),),
                "flavoured:2.0": (("FLAVOUR", "cu12"), ("NEW", "1")),
            },
        ),
        (
            "jp7",
            {
                "flavoured:1.0": (("FLAVOUR", "cu13"),),
                "flavoured:2.0": (("FLAVOUR", "cu13"), ("NEW", "1")),
            },
        ),
    ],
)
def test_config_py_derives_variants_from_the_platform(target, expected):
    catalog = discover([TREES / "gated"], detect_platform({}, target=target))
    derived = {
        v.name: v.spec.build_args for v in catalog.variants if v.spec.base_name == "flavoured"
    }
    assert derived == expected


# --- platform gating ----------------------------------------------------------------------

GATED = {
    "jp5": ["accel:jp5", "jetson-only", "old-python", "on-jetson"],
    "jp6": ["accel:jp6", "flavoured:1.0", "flavoured:2.0", "jetson-only", "on-jetson"],
    "jp7": ["accel:jp7", "flavoured:1.0", "flavoured:2.0", "jetson-only", "on-jetson"],
    "x86_64-cu128": ["accel:x86", "flavoured:1.0", "flavoured:2.0"],
    "x86_64-cu126": ["flavoured:1.0", "flavoured:2.0"],
    "sbsa-cu130": ["accel:sbsa", "flavoured:1.0", "flavoured:2.0", "jetson-only", "on-jetson"],
}


@pytest.mark.parametrize("target", GATED)
def test_platform_gated_variants(target):
    catalog = discover([TREES / "gated"], detect_platform({}, target=target))
    assert sorted(names(catalog)) == GATED[target]


def test_unavailable_variants_carry_the_reason():
    catalog = discover([TREES / "gated"], detect_platform({}, target="x86_64-cu128"))
    reasons = {v.name: v.unavailable for v in catalog.variants if not v.is_available}
    platform = "(platform: cuda-12.8 ubuntu-24.04 x86_64)"
    assert reasons["accel:jp7"] == f"requires tegra, >=cu130 {platform}"
    assert reasons["jetson-only"] == f"requires aarch64 {platform}"
    assert reasons["on-jetson"] == (
        "depends on 'jetson-only', which is not available on this platform"
    )


def test_dependency_on_a_missing_package_makes_the_dependant_unavailable(tmp_path, jp6):
    (tmp_path / "needy").mkdir()
    (tmp_path / "needy" / "package.yaml").write_text("depends: [ghost]\n")
    (tmp_path / "above").mkdir()
    (tmp_path / "above" / "package.yaml").write_text("depends: [needy]\n")
    catalog = discover([tmp_path], jp6)
    reasons = {v.name: v.unavailable for v in catalog.variants}
    assert reasons == {
        "above": "depends on 'needy', which is not available on this platform",
        "needy": "depends on 'ghost', which no package provides",
    }


def test_a_dependency_on_an_alias_base_name_is_satisfiable(jp6):
    # torchvision depends on 'torch', which only the aliases torch:2.6 / torch:2.8 provide.
    catalog = discover([TREES / "alias"], jp6)
    assert sorted(names(catalog)) == ["pytorch:2.6", "pytorch:2.8", "torchaudio", "torchvision"]


def test_disabled_variant_is_unavailable(tmp_path, jp6):
    (tmp_path / "off").mkdir()
    (tmp_path / "off" / "package.yaml").write_text("disabled: true\n")
    [variant] = discover([tmp_path], jp6).variants
    assert variant.unavailable == "disabled"


# --- search, order, patterns --------------------------------------------------------------


def test_discovery_is_deterministic_and_sorted_depth_first(jp6):
    roots = [TREES / "selection", TREES / "pins", TREES / "alias"]
    first = discover(roots, jp6)
    second = discover(roots, jp6)
    assert [v.name for v in first.variants] == [v.name for v in second.variants]
    assert [v.name for v in first.variants] == [
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
        "zlib:1",
        "zlib:2",
        "zmid",
        "ztop",
        "pytorch:2.6",
        "pytorch:2.8",
        "torchaudio",
        "torchvision",
    ]


def test_hidden_and_dunder_directories_are_skipped(tmp_path):
    for name in ("good", ".hidden", "__pycache__", "nested/.git", "nested/inner"):
        (tmp_path / name).mkdir(parents=True)
        (tmp_path / name / "Dockerfile").write_text("FROM x\n")
    found = [path.relative_to(tmp_path).as_posix() for path, _ in iter_package_dirs(tmp_path)]
    assert found == ["good", "nested/inner"]


def test_missing_search_directory_is_empty(tmp_path, jp6):
    assert discover([tmp_path / "nope"], jp6).variants == ()


def test_skip_patterns_remove_matching_variants(jp6):
    catalog = discover([TREES / "wildcard"], jp6, skip=["ros:j*", "rviz"])
    assert names(catalog) == ["ros:humble", "ros-tools"]


def test_patterns_match_names_base_names_and_aliases(jp6):
    catalog = discover([TREES / "wildcard"], jp6)

    def matched(*patterns):
        return [v.name for v in catalog.match(list(patterns))]

    assert matched("ros:*") == ["ros:humble", "ros:jazzy"]
    assert matched("ros") == ["ros:humble", "ros:jazzy"]
    assert matched("*viewer") == ["rviz"]
    assert matched("ros*") == ["ros:humble", "ros:jazzy", "ros-tools", "rviz"]
    assert matched("nothing*") == []


def test_lookup_answers_to_names_base_names_and_alias_base_names(jp6):
    catalog = discover([TREES / "alias"], jp6)
    assert [v.name for v in catalog.lookup("torch")] == ["pytorch:2.6", "pytorch:2.8"]
    assert [v.name for v in catalog.lookup("torch:2.6")] == ["pytorch:2.6"]
    assert [v.name for v in catalog.lookup("pytorch")] == ["pytorch:2.6", "pytorch:2.8"]
    assert catalog.get("torch:2.6") is None
    assert catalog.get("pytorch:2.6") is not None
