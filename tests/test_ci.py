"""``jetforge ci``: the affected set (core, on plans of the golden tree), ``ci plan`` on a
git repository (process tier: git runs), the generated GitHub workflow (golden, and its
public schema when ``check-jsonschema`` is installed).

The golden file is exact. After an intended change, regenerate it with
``JETFORGE_UPDATE_GOLDEN=1 pytest tests/test_ci.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from jetforge.core.ci import affected_stages, changed_files_of, chunks, runner_labels
from jetforge.core.plan import Plan, PlanOptions, plan_build
from jetforge.core.resolve import resolve
from jetforge.discovery.discover import discover
from jetforge.host.context import read_context
from jetforge.host.platform import detect_platform
from jetforge.ops.ci import CiPlan, matrix_outputs, output_name
from tests.conftest import FIXTURES

# Discovery runs the package headers through the script worker: every test here starts a
# process.
pytestmark = pytest.mark.process

TREE = FIXTURES / "trees" / "ci"
GOLDEN = Path(__file__).parent / "golden"
NO_ENGINE = {
    "SSL_CERT_FILE": "",
    "REQUESTS_CA_BUNDLE": "",
    "PIP_CERT": "",
    "JETFORGE_REGISTRIES": "",
    "JETFORGE_DOCKER": "/nonexistent/docker",
    "JETFORGE_PODMAN": "/nonexistent/podman",
}
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def plans_of(tree: Path, target: str, names: tuple[str, ...]) -> list[Plan]:
    platform = detect_platform({}, target=target)
    catalog = discover([tree], platform)
    return [
        plan_build(resolve(catalog, [name], {}), platform, PlanOptions(), read_context)
        for name in names
    ]


def test_without_since_every_stage_once_by_key() -> None:
    plans = plans_of(TREE, "jp6", ("app", "lib", "tool", "base"))
    stages = affected_stages("jp6", plans, None)
    assert [(s.wave, s.package) for s in stages] == [
        (0, "base"),
        (1, "lib"),
        (1, "tool"),
        (2, "app"),
    ]
    assert all(s.reasons == ("no --since: every stage",) for s in stages)
    # a stage several chains share is built in the longest, under that chain's image name
    app = str(plans[0].final_image)
    assert [s.image for s in stages] == [app, app, str(plans[2].final_image), app]
    assert stages[0].parent == plans[0].base_image
    assert (stages[1].parent, stages[2].parent, stages[3].parent) == (
        stages[0].key,
        stages[0].key,
        stages[1].key,
    )
    assert [s.chain for s in stages] == [
        ("base",),
        ("base", "lib"),
        ("base", "tool"),
        ("base", "lib", "app"),
    ]


def test_a_changed_file_selects_its_stage_and_every_stage_after_it() -> None:
    plans = plans_of(TREE, "jp6", ("app", "lib", "tool", "base"))
    changed = [(TREE / "lib" / "lib.txt").resolve()]
    stages = affected_stages("jp6", plans, changed)
    assert [(s.wave, s.package, s.reasons) for s in stages] == [
        (0, "lib", ("changed lib.txt",)),
        (1, "app", ("depends on lib",)),
    ]


def test_no_change_selects_nothing() -> None:
    plans = plans_of(TREE, "jp6", ("app", "tool"))
    assert affected_stages("jp6", plans, []) == ()
    outside = [Path("/elsewhere/Dockerfile"), (TREE / "base" / ".hidden").resolve()]
    assert affected_stages("jp6", plans, outside) == ()


def test_changed_files_of_skips_names_outside_the_key(tmp_path: Path) -> None:
    changed = [tmp_path / "a" / "Dockerfile", tmp_path / "a" / "__pycache__" / "x", tmp_path / "b"]
    assert changed_files_of(tmp_path / "a", changed) == ("Dockerfile",)


def test_runner_labels_from_the_platform() -> None:
    assert runner_labels(detect_platform({}, target="jp6")) == ("jetson", "aarch64", "sm87")
    assert runner_labels(detect_platform({}, target="jp7")) == ("jetson", "aarch64", "sm110")
    assert runner_labels(detect_platform({}, target="x86_64-cu128")) == ("server", "x86_64")


def test_matrices_are_chunked_at_256() -> None:
    plans = plans_of(TREE, "jp6", ("base",))
    (stage,) = affected_stages("jp6", plans, None)
    many = tuple(stage for _ in range(600))
    assert [len(part) for part in chunks(many)] == [256, 256, 88]
    lines = matrix_outputs(CiPlan(many))
    assert [line.split("=", 1)[0] for line in lines] == [output_name("jp6", 0, n) for n in range(3)]
    first = json.loads(lines[0].split("=", 1)[1])
    assert len(first["include"]) == 256
    assert first["include"][0] == {
        "chain": "base",
        "image": stage.image,
        "key": stage.key,
        "package": "base",
        "target": "jp6",
    }
    assert output_name("jp6.2", 1, 0) == "build_jp6_2_w1_c0"


# --- ci plan on a git repository (process tier) ----------------------------------------


def git(repo: Path, *argv: str) -> None:
    subprocess.run(
        ["git", *argv], cwd=repo, check=True, capture_output=True, env={**os.environ, **GIT_ENV}
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository holding a copy of the golden tree, committed."""
    root = tmp_path / "repo"
    shutil.copytree(TREE, root / "packages")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "packages")
    return root


def ci_env(repo: Path) -> dict[str, str]:
    return ci_env_of(repo / "packages")


def ci_env_of(tree: Path) -> dict[str, str]:
    return {**NO_ENGINE, "JETFORGE_SHIPPED_PACKAGES": str(tree)}


def test_ci_plan_since_selects_the_changed_package_and_its_dependents(repo: Path, jetforge) -> None:
    (repo / "packages" / "base" / "test.sh").write_text("#!/bin/sh\ntrue\n")
    git(repo, "commit", "-qam", "base's test")
    (repo / "packages" / "lib" / "extra.txt").write_text("new and untracked: counted\n")
    since = ["ci", "plan", "--since", "HEAD~1", "--target", "jp6"]
    result = jetforge(*since, "app", env=ci_env(repo))
    assert result.code == 0, result.stderr
    assert [line.split()[3] for line in result.stdout.splitlines()] == ["base", "lib", "app"]
    git(repo, "stash", "-u", "-q")
    (repo / "packages" / "lib" / "lib.txt").write_text("changed, not committed\n")
    why = jetforge("ci", "plan", "--since", "HEAD", "--why", "--all", env=ci_env(repo))
    assert why.code == 0, why.stderr
    target = why.stdout.split()[0]
    keys = [line.split()[4] for line in why.stdout.splitlines() if not line.startswith(" ")]
    assert why.stdout.splitlines() == [
        f"{target}  wave 0  lib  {keys[0]}",
        "  changed lib.txt",
        f"{target}  wave 1  app  {keys[1]}",
        "  depends on lib",
    ]
    again = jetforge("ci", "plan", "--since", "HEAD", "--why", "--all", env=ci_env(repo))
    assert again.stdout == why.stdout  # deterministic


def test_ci_plan_json_and_nothing_changed(repo: Path, jetforge) -> None:
    result = jetforge("ci", "plan", "--since", "HEAD", "--all", "--json", env=ci_env(repo))
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout) == {"since": "HEAD", "stages": []}
    text = jetforge("ci", "plan", "--since", "HEAD", "--all", "--target", "jp6", env=ci_env(repo))
    assert (text.code, text.stdout) == (0, "")
    assert "nothing to build" in text.stderr


def test_ci_plan_bad_revision_is_one_line(repo: Path, jetforge) -> None:
    result = jetforge("ci", "plan", "--since", "no-such-rev", "--all", env=ci_env(repo))
    assert result.code == 2
    assert result.stderr.splitlines() == [
        f"jetforge: error: --since: 'no-such-rev' is not a revision of the git repository "
        f"{repo.resolve()}"
    ]


def test_ci_plan_outside_git_is_one_line(tmp_path: Path, jetforge) -> None:
    shutil.copytree(TREE, tmp_path / "packages")
    env = {**NO_ENGINE, "JETFORGE_SHIPPED_PACKAGES": str(tmp_path / "packages")}
    result = jetforge("ci", "plan", "--since", "HEAD", "--all", env=env)
    assert result.code == 2
    assert result.stderr.splitlines() == [
        "jetforge: error: --since: no package directory is in a git work tree"
    ]


def test_ci_plan_needs_packages_or_all(jetforge) -> None:
    result = jetforge("ci", "plan", "core", "--all", env=NO_ENGINE)
    assert (result.code, result.stderr.count("\n")) == (2, 1)
    assert "not both" in result.stderr


# --- the GitHub workflow ----------------------------------------------------------------

GITHUB_ARGS = ("ci", "github", "--all", "--target", "jp6", "--target", "x86_64-cu128")


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("JETFORGE_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{path} differs (see module docstring)"


def schema_checker() -> str | None:
    beside = Path(sys.executable).parent / "check-jsonschema"
    return str(beside) if beside.is_file() else shutil.which("check-jsonschema")


def test_github_workflow_golden(jetforge) -> None:
    result = jetforge(*GITHUB_ARGS, env=ci_env_of(TREE))
    assert result.code == 0, result.stderr
    check_golden("ci-github.yml", result.stdout)
    document = yaml.safe_load(result.stdout)
    jobs = document["jobs"]
    assert next(iter(jobs)) == "plan"
    assert jobs["build_jp6_w1_c0"]["needs"] == ["plan", "build_jp6_w0_c0"]
    assert jobs["build_jp6_w1_c0"]["runs-on"] == ["self-hosted", "jetson", "aarch64", "sm87"]
    assert jobs["build_x86_64_cu128_w0_c0"]["runs-on"] == ["self-hosted", "server", "x86_64"]
    steps = [step for job in jobs.values() for step in job["steps"]]
    assert all(set(step) <= {"name", "id", "run", "env"} for step in steps)  # no `uses:`
    assert set(jobs["plan"]["outputs"]) == set(jobs) - {"plan"}


def test_github_workflow_output_file(jetforge, tmp_path: Path) -> None:
    target = tmp_path / ".github" / "workflows" / "jetforge.yml"
    result = jetforge(*GITHUB_ARGS, "-o", str(target), env=ci_env_of(TREE))
    assert result.code == 0, result.stderr
    assert result.stdout == f"{target}\n"
    printed = jetforge(*GITHUB_ARGS, env=ci_env_of(TREE))
    assert target.read_text(encoding="utf-8") == printed.stdout


@pytest.mark.skipif(
    schema_checker() is None,
    reason="check-jsonschema is not installed (pip install -e '.[dev]' installs it)",
)
def test_github_workflow_matches_the_public_schema(jetforge, tmp_path: Path) -> None:
    workflow = tmp_path / "jetforge.yml"
    result = jetforge(*GITHUB_ARGS, "-o", str(workflow), env=ci_env_of(TREE))
    assert result.code == 0, result.stderr
    checked = subprocess.run(
        [str(schema_checker()), "--builtin-schema", "vendor.github-workflows", str(workflow)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


# --- the GitLab pipelines ---------------------------------------------------------------

GITLAB_ARGS = ("ci", "gitlab", "--all", "--target", "jp6", "--target", "x86_64-cu128")


def test_gitlab_parent_and_child_golden(jetforge) -> None:
    parent = jetforge(*GITLAB_ARGS, env=ci_env_of(TREE))
    assert parent.code == 0, parent.stderr
    check_golden("ci-gitlab.yml", parent.stdout)
    trigger = yaml.safe_load(parent.stdout)["jetforge-build"]["trigger"]
    assert trigger["include"] == [{"artifact": "jetforge-child.yml", "job": "jetforge-generate"}]
    child = jetforge(*GITLAB_ARGS, "--child", env=ci_env_of(TREE))
    assert child.code == 0, child.stderr
    check_golden("ci-gitlab-child.yml", child.stdout)
    jobs = {k: v for k, v in yaml.safe_load(child.stdout).items() if k != "stages"}
    assert len(jobs) == 8  # base, lib, tool, app on two targets
    assert all(len(job["needs"]) <= 1 for job in jobs.values())
    app = next(job for name, job in jobs.items() if name.startswith("jp6 app "))
    assert app["tags"] == ["jetson", "aarch64", "sm87"]
    assert app["needs"][0].startswith("jp6 lib ")


def test_gitlab_child_of_nothing_has_one_job(repo: Path, jetforge) -> None:
    argv = ("ci", "gitlab", "--child", "--since", "HEAD", "--all", "--target", "jp6")
    result = jetforge(*argv, env=ci_env(repo))
    assert result.code == 0, result.stderr
    assert list(yaml.safe_load(result.stdout)) == ["stages", "jetforge-nothing"]


def test_gitlab_since_needs_child(jetforge) -> None:
    result = jetforge(*GITLAB_ARGS, "--since", "HEAD", env=ci_env_of(TREE))
    assert result.code == 2
    assert result.stderr.splitlines() == [
        "jetforge: error: ci gitlab: --since needs --child (the parent pipeline passes it)"
    ]


@pytest.mark.skipif(
    schema_checker() is None,
    reason="check-jsonschema is not installed (pip install -e '.[dev]' installs it)",
)
def test_gitlab_pipelines_match_the_public_schema(jetforge, tmp_path: Path) -> None:
    files = [tmp_path / "parent.yml", tmp_path / "child.yml"]
    for path, extra in zip(files, ((), ("--child",)), strict=True):
        result = jetforge(*GITLAB_ARGS, *extra, "-o", str(path), env=ci_env_of(TREE))
        assert result.code == 0, result.stderr
    checked = subprocess.run(
        [str(schema_checker()), "--builtin-schema", "vendor.gitlab-ci", *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_pipelines_need_a_target(jetforge) -> None:
    for action in ("github", "gitlab"):
        result = jetforge("ci", action, "--all", env=ci_env_of(TREE))
        assert result.code == 2
        assert result.stderr.splitlines() == [
            f"jetforge: error: ci {action}: name at least one --target (the platforms the "
            "runners build for; 'jetforge platform --help' lists them)"
        ]


def test_output_that_is_a_directory_is_one_line(jetforge, tmp_path: Path) -> None:
    result = jetforge(*GITHUB_ARGS, "-o", str(tmp_path), env=ci_env_of(TREE))
    assert (result.code, len(result.stderr.splitlines())) == (2, 1), result.stderr
    assert result.stderr.startswith("jetforge: error: --output: ")
    outputs = jetforge(
        "ci",
        "plan",
        "--all",
        "--target",
        "jp6",
        "--github-output",
        str(tmp_path),
        env=ci_env_of(TREE),
    )
    assert (outputs.code, len(outputs.stderr.splitlines())) == (2, 1), outputs.stderr
    assert outputs.stderr.startswith("jetforge: error: --github-output: ")
