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
