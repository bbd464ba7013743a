"""What a new user runs into: typos, the first bootstrap, the builder, the order of
versions, help texts and what a build says. Each case asserts the exit code and the line
that tells the user what to do."""

from __future__ import annotations

import json
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
