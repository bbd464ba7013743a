"""Bad package files: every one is an error of its own package, with file, line and cause."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.adversarial.conftest import one_line_error

HEADER = "#---\n{}#---\nARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\n"


def header(*lines: str) -> str:
    return HEADER.format("".join(f"# {line}\n" for line in lines))


def test_utf8_bom_keeps_the_header(tree, run):
    root = tree({"a/Dockerfile": b"\xef\xbb\xbf" + header("name: a", "depends: nowhere").encode()})
    (shown,) = json.loads(run(root, "show", "a", "--json").stdout)
    assert shown["depends"] == ["nowhere"]  # the header was read, not dropped


def test_duplicate_keys_in_a_header_are_an_error(tree, run):
    root = tree({"a/Dockerfile": header("name: a", "depends: [x]", "depends: [y]")})
    result = run(root, "list", "--strict")
    assert result.code == 2
    assert "a/Dockerfile:4: malformed YAML: duplicate key 'depends'" in result.stderr


def test_duplicate_variants_in_package_yaml_are_an_error(tree, run):
    root = tree(
        {
            "a/Dockerfile": header("depends: []"),
            "a/package.yaml": "'a:1': {}\n'a:2': {}\n'a:1': {default: true}\n",
        }
    )
    result = run(root, "list", "--strict")
    assert result.code == 2
    assert "a/package.yaml:3: malformed YAML: duplicate key 'a:1'" in result.stderr


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("dockerfile: ../../etc/Dockerfile", "dockerfile"),
        ("dockerfile: /etc/hostname", "dockerfile"),
        ("config: /tmp/evil.py", "config"),
        ("test: ../outside.sh", "test"),
    ],
)
def test_files_outside_the_package_directory_are_an_error(tree, run, line, key):
    root = tree({"a/Dockerfile": header("name: a", line)})
    result = run(root, "list", "--strict")
    assert result.code == 2
    assert f"a: {key} '" in result.stderr
    assert "is outside the package directory" in result.stderr


def test_docs_naming_a_file_outside_are_shown_as_text(tree, run, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("the secret\n")
    root = tree({"a/Dockerfile": header("name: a", f"docs: {secret}", "notes: ../../secret.txt")})
    (root / "a" / "link.md").symlink_to(secret)
    result = run(root, "show", "a")
    assert "the secret" not in result.stdout
    assert f"docs:               {secret}" in result.stdout
    linked = tree({"b/Dockerfile": header("name: b", "docs: link.md")})
    (linked / "b" / "link.md").symlink_to(secret)
    assert "the secret" not in run(linked, "show", "b").stdout


@pytest.mark.parametrize(
    ("line", "key"),
    [("build_flags: '--label \"a=b'", "build_flags"), ("test: 'echo \"x'", "test")],
)
def test_unbalanced_quotes_are_an_error_of_the_package(tree, run, line, key):
    root = tree({"a/Dockerfile": header("name: a", line)})
    result = run(root, "build", "--simulate", "a")
    one_line_error(result, 2, "package 'a' cannot be read", f"a: {key} ", "No closing quotation")


def test_a_missing_dockerfile_is_named(tree, run):
    root = tree({"a/Dockerfile": header("name: a", "dockerfile: Missing.Dockerfile")})
    result = run(root, "build", "--simulate", "a")
    one_line_error(result, 2, "a: dockerfile 'Missing.Dockerfile' not found")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PYTHON_VERSION", "3"),
        ("PYTHON_VERSION", "4.0"),
        ("CUDA_VERSION", "99"),
        ("CUDA_VERSION", "1.0"),
    ],
)
def test_implausible_platform_overrides_are_errors(jetforge, variable, value):
    result = jetforge("platform", env={variable: value})
    one_line_error(result, 2, f"{variable}: '{value}' is not valid")


def test_a_definition_that_is_not_utf8_is_named_with_its_line(tree, run):
    root = tree({"a/Dockerfile": header("name: a").encode() + b"RUN echo \xff\n"})
    result = run(root, "build", "--simulate", "a")
    one_line_error(result, 2, "a/Dockerfile:6: is not UTF-8 text (byte 0xff)")


def test_an_unreadable_definition_is_named(tree, run, monkeypatch):
    # As root (the CI machine) no mode makes a file unreadable; refuse the read instead.
    root = tree({"a/Dockerfile": header("name: a"), "a/package.yaml": "depends: []\n"})
    blocked = root / "a" / "package.yaml"
    original = Path.read_text

    def read_text(self: Path, *args: object, **kwargs: object) -> str:
        if self == blocked:
            raise PermissionError(13, "Permission denied", str(self))
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", read_text)
    result = run(root, "list", "--strict")
    assert result.code == 2, result.stderr
    assert f"{blocked}: cannot be read: Permission denied" in result.stderr
    assert "Traceback" not in result.stderr
