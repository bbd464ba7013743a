"""``jetforge bake``: the docker-bake.json of a chain (golden), its links, labels, cache
entries and paths, checked against what ``docker buildx bake`` reads.

No engine runs here (``JETFORGE_DOCKER`` names no program): the plans are the engine-less
ones of ``build --simulate``. This machine's docker has no buildx, so the file is not
baked here; ``check_bake_structure`` checks it against the bake file reference instead
(target attributes and their types, group members, ``target:`` contexts, and every path
resolved the way bake resolves it: the context from the bake file's directory, the
Dockerfile from the context).

The golden file is exact. After an intended change, regenerate it with
``JETFORGE_UPDATE_GOLDEN=1 pytest tests/test_bake.py`` and review the diff.
"""

from __future__ import annotations

import itertools
import json
import os
import posixpath
import re
import shutil
from pathlib import Path

import pytest

from jetforge import __version__
from jetforge.core.dockerfile import RESET_STAGE_KEY
from jetforge.core.plan import PlanOptions, plan_build
from jetforge.core.resolve import resolve
from jetforge.core.tags import parse_image_ref, reference_problem
from jetforge.discovery.discover import discover
from jetforge.errors import UsageError
from jetforge.host.context import read_context
from jetforge.host.platform import detect_platform
from jetforge.host.registry import parse_registry_location
from jetforge.ops.bake import BAKE_FILE, bake_attributes, bake_file, target_name
from tests.conftest import FIXTURES

TREES = FIXTURES / "trees"
GOLDEN = Path(__file__).parent / "golden"
CREATED = "2026-01-02T03:04:05Z"
REGISTRY = "registry.example:5000/team"
NO_ENGINE = {
    "SSL_CERT_FILE": "",
    "REQUESTS_CA_BUNDLE": "",
    "PIP_CERT": "",
    "JETFORGE_SHIPPED_PACKAGES": "",
    "JETFORGE_REGISTRIES": "",
    "JETFORGE_DOCKER": "/nonexistent/docker",
    "JETFORGE_PODMAN": "/nonexistent/podman",
}
# The attributes of a bake target (docs.docker.com/build/bake/reference) that jetforge
# writes, with the JSON type bake expects of each.
TARGET_ATTRIBUTES = {
    "args": dict,
    "cache-from": list,
    "cache-to": list,
    "context": str,
    "contexts": dict,
    "dockerfile": str,
    "labels": dict,
    "no-cache": bool,
    "platforms": list,
    "pull": bool,
    "shm-size": str,
    "tags": list,
    "target": str,
    "ulimits": list,
}
BAKE_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_-]*")


@pytest.fixture
def bake(jetforge, tmp_path):  # type: ignore[no-untyped-def]
    """``bake(*argv, env=…)`` → (result, document); writes into ``tmp_path/out``."""

    def call(*argv: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        out = tmp_path / "out"
        result = jetforge("bake", *argv, "--output", str(out), env={**NO_ENGINE, **(env or {})})
        path = out / BAKE_FILE
        document = json.loads(path.read_text()) if result.code == 0 else None
        return result, document

    return call


@pytest.fixture
def packages(tmp_path: Path) -> Path:
    """A copy of the golden fixture tree beside the output directory, so the relative
    paths in the bake file are the same on every machine."""
    tree = tmp_path / "packages"
    shutil.copytree(TREES / "golden", tree, ignore=shutil.ignore_patterns("__pycache__"))
    return tree


def targets_of(document: dict[str, object]) -> dict[str, dict[str, object]]:
    found = document["target"]
    assert isinstance(found, dict)
    return found


def check_bake_structure(document: dict[str, object], directory: Path) -> None:
    """What ``docker buildx bake`` needs of the file, checked without buildx."""
    assert set(document) == {"group", "target"}
    targets = targets_of(document)
    for name, target in targets.items():
        assert BAKE_NAME.fullmatch(name), name
        assert set(target) <= set(TARGET_ATTRIBUTES), set(target) - set(TARGET_ATTRIBUTES)
        for attribute, value in target.items():
            assert isinstance(value, TARGET_ATTRIBUTES[attribute]), (name, attribute)
        for mapping in ("args", "labels", "contexts"):
            value = target.get(mapping, {})
            assert isinstance(value, dict)
            assert all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
        for listed in ("tags", "platforms", "cache-from", "cache-to"):
            value = target.get(listed, [])
            assert isinstance(value, list)
            assert all(isinstance(item, str) for item in value)
        assert target["tags"], name
        for tag in target["tags"]:
            assert reference_problem(parse_image_ref(tag)) == "", tag
        # bake takes the context from where it runs (the bake file's directory) and the
        # Dockerfile from the context
        context, dockerfile = target["context"], target["dockerfile"]
        assert isinstance(context, str)
        assert isinstance(dockerfile, str)
        assert not os.path.isabs(context)
        assert not os.path.isabs(dockerfile)
        assert (directory / context).is_dir(), context
        assert (directory / posixpath.join(context, dockerfile)).is_file(), dockerfile
        contexts = target.get("contexts", {})
        assert isinstance(contexts, dict)
        for key, value in contexts.items():
            # the name is what FROM ${BASE_IMAGE} reads, so it must be an image name too
            assert reference_problem(parse_image_ref(key)) == ""
            assert value == f"target:{key}"
            assert key in targets
            args = target["args"]
            assert isinstance(args, dict)
            assert args["BASE_IMAGE"] == key
    groups = document["group"]
    assert isinstance(groups, dict)
    for group in groups.values():
        assert set(group) == {"targets"}
        assert group["targets"]
        assert all(member in targets for member in group["targets"])


def normalized(document: dict[str, object]) -> dict[str, object]:
    """The document with the build time and jetforge's version as placeholders."""
    for target in targets_of(document).values():
        labels = target["labels"]
        assert isinstance(labels, dict)
        assert labels["org.opencontainers.image.created"].endswith("Z")
        labels["org.opencontainers.image.created"] = CREATED
        assert labels["jetforge.version"] == __version__
        labels["jetforge.version"] = "<version>"
    return document


# --- golden -------------------------------------------------------------------------------


def test_golden_bake_file(bake, packages, tmp_path):
    result, document = bake(
        "bundle", "--target", "jp6", "--package-dirs", str(packages),
        env={"JETFORGE_REGISTRIES": REGISTRY},
    )  # fmt: skip
    assert result.code == 0, result.stderr
    out = tmp_path / "out"
    assert result.stdout == f"{out / BAKE_FILE}\n"
    check_bake_structure(document, out)
    files = {
        path.name: path.read_text() for path in sorted(out.iterdir()) if path.name != BAKE_FILE
    }
    golden = {"bake": normalized(document), "files": files}
    text = json.dumps(golden, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    path = GOLDEN / "bake-jp6.json"
    if os.environ.get("JETFORGE_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{path} differs (see module docstring)"


def test_the_same_plans_give_the_same_bytes(packages, tmp_path):
    plans = [plan_of(packages), plan_of(packages, "jp6", "frame:1.0")]
    first = bake_file(plans, tmp_path / "out").text
    assert bake_file(plans, tmp_path / "out").text == first
    assert first == json.dumps(json.loads(first), indent=2, sort_keys=True) + "\n"


# --- what the golden file encodes, stated as rules ----------------------------------------


def plan_of(tree: Path, target: str = "jp6", *requests: str):  # type: ignore[no-untyped-def]
    platform = detect_platform({}, target=target)
    catalog = discover([tree], platform)
    resolution = resolve(catalog, list(requests or ("bundle",)), {})
    return plan_build(resolution, platform, PlanOptions(created=CREATED), read_context)


def test_each_stage_reads_its_parent_through_a_named_context(packages, tmp_path):
    plan = plan_of(packages)
    targets = targets_of(bake_file([plan], tmp_path).document)
    names = [target_name(stage) for stage in plan.stages]
    assert list(targets) == names  # one target per stage
    first = targets[names[0]]
    assert "contexts" not in first
    assert first["args"]["BASE_IMAGE"] == plan.base_image == "ubuntu:22.04"
    for parent, child in itertools.pairwise(names):
        assert targets[child]["contexts"] == {parent: f"target:{parent}"}
        assert targets[child]["args"]["BASE_IMAGE"] == parent
    document = bake_file([plan], tmp_path).document
    assert document["group"] == {
        "default": {"targets": [names[-1]]},
        "stages": {"targets": names},
    }


def test_labels_and_keys_are_those_build_gives_the_stages(bake, jetforge, packages):
    argv = ("bundle", "--target", "jp6", "--package-dirs", str(packages))
    simulated = jetforge("build", "--simulate", "--json", *argv, env=NO_ENGINE)
    assert simulated.code == 0, simulated.stderr
    stages = json.loads(simulated.stdout)["stages"]
    result, document = bake(*argv)
    assert result.code == 0, result.stderr
    order = document["group"]["stages"]["targets"]
    baked = [targets_of(document)[name] for name in order]  # build order
    assert [t["labels"]["jetforge.stage-key"] for t in baked] == [s["key"] for s in stages]
    for target, stage in zip(baked, stages, strict=True):
        ignored = "org.opencontainers.image.created"  # the time of each command
        assert {k: v for k, v in target["labels"].items() if k != ignored} == {
            k: v for k, v in stage["labels"].items() if k != ignored
        }
        assert target["tags"] == [stage["image"]]
        args = dict(stage["build_args"])
        if target.get("contexts"):
            args["BASE_IMAGE"] = next(iter(target["contexts"]))
        assert target["args"] == args


def test_cache_entries_and_registry_tags_come_with_a_registry(packages, tmp_path):
    plan = plan_of(packages)
    registry = parse_registry_location(REGISTRY)
    with_cache = targets_of(bake_file([plan], tmp_path, cache=registry).document)
    for stage in plan.stages:
        target = with_cache[target_name(stage)]
        ref = f"{REGISTRY}/{stage.image.name}:{stage.image.tag}"
        assert target["tags"] == [ref]  # where `jetforge build` looks for stage images
        assert target["cache-from"] == [f"type=registry,ref={ref}-cache"]
        assert target["cache-to"] == [f"type=registry,ref={ref}-cache,mode=max"]
    without = targets_of(bake_file([plan], tmp_path).document)
    for stage in plan.stages:
        target = without[target_name(stage)]
        assert target["tags"] == [str(stage.image)]
        assert "cache-from" not in target
        assert "cache-to" not in target


def test_the_cli_uses_the_first_configured_registry(bake, packages):
    argv = ("core", "--target", "jp6", "--package-dirs", str(packages))
    env = {"JETFORGE_REGISTRIES": f"{REGISTRY},other.example/x"}
    _, document = bake(*argv, env=env)
    [target] = targets_of(document).values()
    assert target["tags"] == [f"{REGISTRY}/core:r36.4.0-cu126-22.04-core"]
    assert target["cache-from"] == [
        f"type=registry,ref={REGISTRY}/core:r36.4.0-cu126-22.04-core-cache"
    ]
    _, document = bake(*argv)
    [target] = targets_of(document).values()
    assert "cache-from" not in target
    assert "cache-to" not in target


def test_multiple_chains_share_stages_by_key(bake, packages, tmp_path):
    result, document = bake(
        "--multiple", "frame:1.0", "frame:2.0", "--target", "x86_64-cu128",
        "--package-dirs", str(packages),
    )  # fmt: skip
    assert result.code == 0, result.stderr
    check_bake_structure(document, tmp_path / "out")
    targets = targets_of(document)
    [core] = [name for name in targets if name.startswith("core-")]
    frames = document["group"]["default"]["targets"]
    assert [name.split("-")[:3] for name in frames] == [["frame", "1", "0"], ["frame", "2", "0"]]
    assert all(targets[name]["contexts"] == {core: f"target:{core}"} for name in frames)
    assert document["group"]["stages"]["targets"] == [core, *frames]
    assert targets[core]["platforms"] == ["linux/amd64"]
    assert targets[core]["tags"] == [  # built once, tagged with each chain's name
        "frame:1.0-x86_64-cu128-24.04-core",
        "frame:2.0-x86_64-cu128-24.04-core",
    ]


def test_meta_and_edited_dockerfiles_lie_beside_the_bake_file(bake, packages, tmp_path):
    api = packages / "upstream"
    api.mkdir()
    (api / "Dockerfile").write_text(
        "#---\n# name: upstream\n# depends: [core]\n#---\nARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"
        "ADD https://api.github.com/repos/x/y/git/refs/heads/main /tmp/commit\n"
    )
    result, document = bake(
        "upstream", "bundle", "--no-github-api", "--target", "jp6",
        "--package-dirs", str(packages),
    )  # fmt: skip
    assert result.code == 0, result.stderr
    out = tmp_path / "out"
    check_bake_structure(document, out)
    targets = targets_of(document)
    [upstream] = [name for name in targets if name.startswith("upstream-")]
    written = sorted(path.name for path in out.glob("*.Dockerfile"))
    assert written == sorted(f"{name}.Dockerfile" for name in targets)  # as the stages build
    for name in targets:
        assert RESET_STAGE_KEY in (out / f"{name}.Dockerfile").read_text()
    edited = (out / f"{upstream}.Dockerfile").read_text()
    assert "# jetforge --no-github-api: ADD https://api.github.com" in edited
    assert targets[upstream]["context"] == "../packages/upstream"
    assert targets[upstream]["dockerfile"] == f"../../out/{upstream}.Dockerfile"


def test_the_trust_stage_context_is_copied_beside_the_bake_file(bake, packages, tmp_path):
    bundle = FIXTURES / "certs" / "test-ca.crt"
    result, document = bake(
        "core", "--target", "jp6", "--package-dirs", str(packages),
        env={"SSL_CERT_FILE": str(bundle)},
    )  # fmt: skip
    assert result.code == 0, result.stderr
    out = tmp_path / "out"
    check_bake_structure(document, out)
    trust, core = document["group"]["stages"]["targets"]
    assert trust.startswith("ca-trust-")
    assert targets_of(document)[trust]["context"] == trust
    assert sorted(path.name for path in (out / trust).iterdir()) == [
        "Dockerfile",
        "ca-bundle.crt",
    ]
    assert targets_of(document)[core]["contexts"] == {trust: f"target:{trust}"}


def test_build_flags_become_bake_attributes():
    flags = ["--shm-size", "1g", "--pull", "--ulimit=nofile=1024", "--ulimit", "nproc=64"]
    assert bake_attributes(flags, "x") == {
        "shm-size": "1g",
        "pull": True,
        "ulimits": ["nofile=1024", "nproc=64"],
    }
    assert bake_attributes(["--no-cache", "--target=runtime"], "x") == {
        "no-cache": True,
        "target": "runtime",
    }
    with pytest.raises(UsageError, match=r"^core: build flag '--squash' has no"):
        bake_attributes(["--squash"], "core")
    with pytest.raises(UsageError, match=r"^x: build flag '--shm-size' needs a value$"):
        bake_attributes(["--shm-size"], "x")


def test_target_names_are_bake_names_and_image_names(packages):
    for stage in plan_of(packages).stages:
        name = target_name(stage)
        assert BAKE_NAME.fullmatch(name)
        assert reference_problem(parse_image_ref(name)) == ""
        assert name.endswith(stage.key[:12])
    assert [target_name(stage).rsplit("-", 1)[0] for stage in plan_of(packages).stages] == [
        "core",
        "frame-2-0",
        "accel",
        "bundle",
    ]


# --- usage errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("bake",), "bake: name at least one PACKAGE ('jetforge list' shows them)"),
        (
            ("bake", "core", "--build-args", "NOVALUE"),
            "--build-args: 'NOVALUE' is not K=V (or K:V)",
        ),
        (
            ("bake", "core", "--build-args", "BASE_IMAGE=x"),
            "--build-args: BASE_IMAGE is set by jetforge (the previous stage's image; "
            "choose the first one with --base)",
        ),
        (
            ("bake", "core", "--build-flags=--squash"),
            "--build-flags: build flag '--squash' has no docker-bake.json equivalent "
            "(bake takes --no-cache, --pull, --shm-size, --target, --ulimit)",
        ),
        (("bake", "nosuch"), None),
    ],
)
def test_bad_arguments_are_one_line_errors(jetforge, tmp_path, argv, message):
    result = jetforge(
        *argv, "--target", "jp6", "--package-dirs", str(TREES / "golden"),
        "--output", str(tmp_path / "out"), env=NO_ENGINE,
    )  # fmt: skip
    assert result.code == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("jetforge: error: ")
    if message is not None:
        assert line == f"jetforge: error: {message}"
    assert result.stdout == ""
    assert not (tmp_path / "out").exists()


def test_an_output_that_is_a_file_or_inside_a_context_is_refused(jetforge, packages, tmp_path):
    common = ("bake", "core", "--target", "jp6", "--package-dirs", str(packages))
    afile = tmp_path / "afile"
    afile.write_text("")
    result = jetforge(*common, "--output", str(afile), env=NO_ENGINE)
    assert (result.code, result.stderr) == (
        2,
        f"jetforge: error: --output: {afile.resolve()} is not a directory\n",
    )
    inside = packages / "core" / "bake"
    result = jetforge(*common, "--output", str(inside), env=NO_ENGINE)
    assert result.code == 2
    assert result.stderr == (
        f"jetforge: error: --output: {inside.resolve()} lies in the build context of core (files "
        "written there would change its stage key); choose another directory\n"
    )
    assert not inside.exists()


def test_keys_from_the_base_name_are_warned_about(bake, packages):
    result, _ = bake("core", "--target", "jp6", "--package-dirs", str(packages))
    assert result.code == 0
    assert "a later 'jetforge build' will not find these images by key" in result.stderr


def test_help(jetforge):
    result = jetforge("bake", "--help")
    assert result.code == 0
    assert result.stdout.startswith("usage: jetforge bake")
    assert result.stderr == ""
