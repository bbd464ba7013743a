"""Package specs: the Dockerfile header, package.yaml and key checking (docs/package-format.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.version import Version

from jetforge.core.spec import (
    PackageSpec,
    is_inside,
    parse_keys,
    parse_package_dir,
    parse_version,
    read_header,
)
from jetforge.core.yaml_text import key_lines, load_yaml
from jetforge.errors import DefinitionError

DOCKERFILE = "Dockerfile"


def write_package(directory: Path, **files: str) -> Path:
    """Write a package directory; ``package_yaml`` stands for ``package.yaml``."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name.replace("package_yaml", "package.yaml")).write_text(text)
    return directory


def parse(directory: Path) -> list[PackageSpec]:
    files = frozenset(path.name for path in directory.iterdir() if path.is_file())
    return list(parse_package_dir(directory, files))


# --- the header -------------------------------------------------------------------------


def test_header_is_the_text_between_the_first_two_marker_lines():
    text = "#---\n# name: a\n# depends: [b]\n#---\nFROM x\n#---\n# name: other\n#---\n"
    assert read_header(Path(DOCKERFILE), text) == (" name: a\n depends: [b]", 2)


def test_comment_lines_may_come_before_the_header_and_shift_its_line():
    text = "# syntax=docker/dockerfile:1\n\n#---\n# name: a\n#---\nFROM x\n"
    assert read_header(Path(DOCKERFILE), text) == (" name: a", 4)


def test_only_the_first_hash_of_each_header_line_is_removed():
    text = "#---\n# notes: 'issue #12'\n#---\n"
    assert read_header(Path(DOCKERFILE), text) == (" notes: 'issue #12'", 2)


@pytest.mark.parametrize(
    "text",
    ["FROM x\n", "ARG BASE_IMAGE\n#---\n# name: a\n#---\n", ""],
    ids=["no-header", "instruction-before-header", "empty"],
)
def test_a_dockerfile_without_a_leading_header_has_none(text):
    assert read_header(Path(DOCKERFILE), text) is None


def test_header_without_closing_marker_names_file_and_opening_line():
    text = "# syntax=docker/dockerfile:1\n#---\n# name: a\nFROM x\n"
    with pytest.raises(DefinitionError) as caught:
        read_header(Path("pkg/Dockerfile"), text)
    assert caught.value.line == 2
    assert str(caught.value) == "pkg/Dockerfile:2: header has no closing '#---' line"


def test_malformed_yaml_names_file_and_line_offset_by_the_header_start():
    with pytest.raises(DefinitionError) as caught:
        load_yaml(Path("pkg/Dockerfile"), "name: a\ndepends: [b\nnotes: x\n", first_line=5)
    assert caught.value.path == Path("pkg/Dockerfile")
    assert caught.value.line == 7
    assert "malformed YAML" in caught.value.problem


def test_key_lines_maps_every_key_to_its_file_line():
    text = "a:1:\n  depends: [x]\nb:\n  build_args:\n    K: v\n"
    assert key_lines(text, first_line=10) == {
        "a:1": 10,
        "depends": 11,
        "b": 12,
        "build_args": 13,
        "K": 14,
    }


# --- key checking -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [
        ("dependz", "depends"),
        ("requirez", "requires"),
        ("build_arg", "build_args"),
        ("tests", "test"),
    ],
)
def test_unknown_key_suggests_the_closest_valid_key(key, suggestion):
    with pytest.raises(DefinitionError) as caught:
        parse_keys({key: "x"}, Path("p.yaml"), {key: 3})
    assert str(caught.value) == f"p.yaml:3: unknown key '{key}' (did you mean '{suggestion}'?)"


def test_unknown_key_with_nothing_close_lists_the_valid_keys():
    with pytest.raises(DefinitionError) as caught:
        parse_keys({"zzzzzz": 1}, Path("p.yaml"))
    assert "valid: name, alias, group, depends" in caught.value.problem


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"name": ["a"]}, "key 'name' must be a string"),
        ({"group": 22.04}, "key 'group' must be a string (quote numbers, e.g. '22.04')"),
        ({"depends": {"a": 1}}, "key 'depends' must be a string or a list of strings"),
        ({"depends": ["a", 2]}, "key 'depends' must be a string (quote numbers, e.g. '22.04')"),
        ({"default": "yes"}, "key 'default' must be true or false"),
        ({"disabled": 1}, "key 'disabled' must be true or false"),
        ({"build_args": ["A=1"]}, "key 'build_args' must be a mapping of names to strings"),
        ({"build_args": {"A": [1]}}, "key 'build_args' must be a mapping of names to strings"),
        ({"test": True}, "key 'test' must be a string or a list of strings"),
        ({"tier": "ok"}, "key 'tier' must be e2e, manual or plan, optionally with a note"),
        ({"tier": "plan — text"}, "key 'tier' must be e2e, manual or plan"),
        ({"tier": 1}, "key 'tier' must be e2e, manual or plan"),
    ],
)
def test_wrong_key_type_names_the_key_and_the_expected_type(raw, message):
    with pytest.raises(DefinitionError) as caught:
        parse_keys(raw, Path("p.yaml"))
    assert caught.value.problem.startswith(message)


def test_tier_is_a_level_with_an_optional_note():
    parsed = parse_keys({"tier": "manual (plan off x86_64)"}, Path("p.yaml"))
    assert parsed == {"tier": "manual (plan off x86_64)"}
    assert PackageSpec("x", Path("/p"), Path("/p/Dockerfile"), tier="plan").tier_name == "plan"
    assert PackageSpec("x", Path("/p"), Path("/p/Dockerfile"), tier="e2e (x)").tier_name == "e2e"


def test_keys_are_converted_to_tuples_and_build_args_to_text():
    parsed = parse_keys(
        {
            "alias": "torch",
            "depends": ["a", "b:1"],
            "requires": ">=r36",
            "build_args": {"N": 3, "ON": True, "OFF": False, "F": 1.5, "S": "x"},
            "default": True,
            "notes": None,
        },
        Path("p.yaml"),
    )
    assert parsed == {
        "alias": ("torch",),
        "depends": ("a", "b:1"),
        "requires": (">=r36",),
        "build_args": (("N", "3"), ("ON", "true"), ("OFF", "false"), ("F", "1.5"), ("S", "x")),
        "default": True,
    }


# --- the spec value ---------------------------------------------------------------------


def test_name_parts_and_version():
    spec = PackageSpec("pytorch:2.8", Path("p"), Path("p/Dockerfile"))
    assert (spec.base_name, spec.tag, spec.version) == ("pytorch", "2.8", Version("2.8"))
    plain = PackageSpec("ros:humble", Path("p"), Path("p/Dockerfile"))
    assert (plain.base_name, plain.tag, plain.version) == ("ros", "humble", None)
    assert PackageSpec("numpy", Path("p"), Path("p/Dockerfile")).version is None


@pytest.mark.parametrize(("text", "expected"), [("2.8", "2.8"), ("", None), ("humble", None)])
def test_parse_version(text, expected):
    assert parse_version(text) == (Version(expected) if expected else None)


def test_replace_checks_keys_like_the_file_format():
    spec = PackageSpec("a", Path("p"), Path("p/Dockerfile"))
    derived = spec.replace(name="a:2", build_args={"X": 1}, depends="b")
    assert (derived.name, derived.build_args, derived.depends) == ("a:2", (("X", "1"),), ("b",))
    assert spec.name == "a"  # the original is unchanged (frozen)
    with pytest.raises(DefinitionError, match="did you mean 'depends'"):
        spec.replace(dependz=["b"])
    with pytest.raises(DefinitionError, match="invalid name 'A B'"):
        spec.replace(name="A B")


# --- package directories ----------------------------------------------------------------


def test_header_only_package_defaults_its_name_to_the_directory(tmp_path):
    directory = write_package(tmp_path / "tool", **{DOCKERFILE: "#---\n# group: g\n#---\nFROM x\n"})
    [spec] = parse(directory)
    assert (spec.name, spec.group, spec.dockerfile) == ("tool", "g", DOCKERFILE)
    assert (spec.path, spec.source) == (directory, directory / DOCKERFILE)


def test_package_without_dockerfile_is_a_meta_package(tmp_path):
    directory = write_package(tmp_path / "meta", package_yaml="depends: [a, b]\n")
    [spec] = parse(directory)
    assert (spec.name, spec.dockerfile, spec.depends) == ("meta", None, ("a", "b"))


def test_flat_package_yaml_overrides_the_header(tmp_path):
    directory = write_package(
        tmp_path / "tool",
        **{DOCKERFILE: "#---\n# name: tool\n# group: old\n# test: t.sh\n#---\nFROM x\n"},
        package_yaml="group: new\n",
    )
    [spec] = parse(directory)
    assert (spec.group, spec.test, spec.source) == ("new", ("t.sh",), directory / "package.yaml")


def test_variant_package_yaml_yields_exactly_its_variants_inheriting_the_header(tmp_path):
    directory = write_package(
        tmp_path / "lib",
        **{DOCKERFILE: "#---\n# name: ignored\n# group: g\n# depends: [base]\n#---\nFROM x\n"},
        package_yaml="lib:1: {}\nlib:2:\n  depends: [other]\n  default: true\n",
    )
    specs = parse(directory)
    assert [(s.name, s.group, s.depends, s.default) for s in specs] == [
        ("lib:1", "g", ("base",), False),
        ("lib:2", "g", ("other",), True),
    ]
    assert all(spec.dockerfile == DOCKERFILE for spec in specs)


def test_variant_that_sets_a_different_name_is_an_error(tmp_path):
    directory = write_package(tmp_path / "lib", package_yaml="lib:1:\n  name: lib:9\n")
    with pytest.raises(DefinitionError) as caught:
        parse(directory)
    assert (
        str(caught.value)
        == f"{directory / 'package.yaml'}:1: variant 'lib:1' sets a different name"
    )


def test_unknown_key_in_a_variant_names_its_line(tmp_path):
    directory = write_package(
        tmp_path / "lib", package_yaml="lib:1:\n  group: g\nlib:2:\n  gruop: g\n"
    )
    with pytest.raises(DefinitionError) as caught:
        parse(directory)
    assert caught.value.line == 4
    assert "unknown key 'gruop' (did you mean 'group'?)" in str(caught.value)


def test_flat_file_with_a_misspelt_key_reports_the_key_not_a_variant(tmp_path):
    directory = write_package(tmp_path / "lib", package_yaml="group: g\ndepnds: [a]\n")
    with pytest.raises(DefinitionError) as caught:
        parse(directory)
    assert (caught.value.line, caught.value.problem) == (
        2,
        "unknown key 'depnds' (did you mean 'depends'?)",
    )


def test_header_that_is_not_a_mapping_is_an_error(tmp_path):
    directory = write_package(tmp_path / "p", **{DOCKERFILE: "#---\n# - a\n# - b\n#---\nFROM x\n"})
    with pytest.raises(DefinitionError, match="expected a mapping of package keys"):
        parse(directory)


def test_config_py_is_recorded_but_not_run_while_parsing(tmp_path):
    directory = write_package(
        tmp_path / "p",
        **{DOCKERFILE: "#---\n# name: p\n#---\nFROM x\n", "config.py": "raise SystemExit(3)\n"},
    )
    [spec] = parse(directory)
    assert spec.config == ("config.py",)


def test_invalid_variant_name_is_an_error(tmp_path):
    directory = write_package(tmp_path / "p", **{DOCKERFILE: "#---\n# name: My Package\n#---\n"})
    with pytest.raises(DefinitionError, match="invalid name 'My Package'"):
        parse(directory)


@pytest.mark.parametrize(
    ("name", "inside"),
    [
        ("Dockerfile", True),
        ("sub/../Dockerfile", True),
        ("./test.sh", True),
        ("..hidden", True),
        ("a/..b", True),
        ("/etc/hostname", False),
        ("//etc/hostname", False),
        ("..", False),
        ("../Dockerfile", False),
        ("a/../../Dockerfile", False),
    ],
)
def test_is_inside_tells_names_that_leave_their_directory(name: str, inside: bool) -> None:
    assert is_inside(name) is inside
