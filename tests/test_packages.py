"""The shipped package tree: definitions, tiers, resolution on every platform, golden plans
and the generated docs/packages.md (fast; no engine).

Golden plans keep the fields that say what would be built (chain, images, Dockerfiles,
build arguments, tests), not stage keys or labels, which change with every edit of a
package file. After a deliberate change of the tree or the platform table, regenerate them
with ``JETFORGE_UPDATE_GOLDEN=1 pytest tests/test_packages.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

import pytest

from jetforge.core.catalog import Catalog
from jetforge.core.platform import Platform
from jetforge.core.resolve import resolve
from jetforge.discovery.discover import discover
from jetforge.errors import ResolutionError
from jetforge.host.context import META_DOCKERFILE
from jetforge.host.platform import detect_platform
from jetforge.host.platform_data import target_names
from jetforge.ops.docs import platform_columns, render_packages
from jetforge.ops.workspace import shipped_packages

ROOT = Path(__file__).parent.parent
PACKAGES = shipped_packages()
GOLDEN = Path(__file__).parent / "golden" / "packages"
# No host CA bundle (no generated trust stage) and no overrides from the caller's shell.
CLEAN = {
    "SSL_CERT_FILE": "",
    "REQUESTS_CA_BUNDLE": "",
    "PIP_CERT": "",
    "JETFORGE_SHIPPED_PACKAGES": str(PACKAGES),
}
GOLDEN_TARGETS = ("jp5", "jp6", "jp6.2", "jp7", "x86_64-cu128", "sbsa-cu130")
GOLDEN_PACKAGES = ("l4t-pytorch", "l4t-ml", "ros:humble-desktop", "llama_cpp", "transformers")
# Platforms beyond the presets' defaults: other CUDA and Python releases chosen by the
# environment, and the CI platform.
EXTRA_PLATFORMS = (
    ("jp6", "", {"CUDA_VERSION": "12.2"}),
    ("jp6", "", {"CUDA_VERSION": "12.4"}),
    ("jp6", "", {"CUDA_VERSION": "12.8"}),
    ("jp6", "", {"PYTHON_VERSION": "3.12"}),
    ("x86_64-cu128", "", {"CUDA_VERSION": "12.9"}),
    ("x86_64-cu128", "ubuntu:22.04", {"CUDA_VERSION": "12.4"}),
    ("x86_64-cu128", "ubuntu:22.04", {"CUDA_VERSION": "12.2"}),
    ("x86_64-cu128", "debian:12", {}),
)


def platforms() -> list[tuple[str, str, dict[str, str]]]:
    return [(name, "", {}) for name in target_names()] + list(EXTRA_PLATFORMS)


def platform_id(case: tuple[str, str, dict[str, str]]) -> str:
    target, distro, env = case
    extra = [distro] if distro else []
    extra += [f"{key}={value}" for key, value in env.items()]
    return "+".join([target, *extra])


@cache
def catalog_for(target: str, distro: str, env_items: tuple[tuple[str, str], ...]) -> Catalog:
    platform = detect_platform(dict(env_items), target=target, distro=distro or None)
    return discover([PACKAGES], platform)


def catalog(case: tuple[str, str, dict[str, str]]) -> tuple[Catalog, Platform]:
    target, distro, env = case
    platform = detect_platform(env, target=target, distro=distro or None)
    return catalog_for(target, distro, tuple(sorted(env.items()))), platform


# --- definitions --------------------------------------------------------------------------


@pytest.mark.process
@pytest.mark.parametrize("case", platforms(), ids=platform_id)
def test_the_tree_has_no_definition_errors(case):
    found, _ = catalog(case)
    assert [str(problem) for problem in found.problems] == []


@pytest.mark.parametrize("case", platforms(), ids=platform_id)
def test_every_variant_states_its_tier_and_has_a_test(case):
    found, _ = catalog(case)
    for variant in found.variants:
        assert variant.spec.tier_name in ("e2e", "manual", "plan"), f"{variant.name}: no tier"
        assert "tier:" not in variant.spec.notes, f"{variant.name}: a tier in its notes"
        assert variant.spec.notes.strip(), f"{variant.name}: no notes"
        assert variant.spec.test, f"{variant.name}: no test"
        for entry in variant.spec.test:
            script = entry.split()[0]
            if script.endswith((".py", ".sh")):
                assert (variant.spec.path / script).is_file(), f"{variant.name}: no {script}"
        if variant.spec.dockerfile:
            assert (variant.spec.path / variant.spec.dockerfile).is_file(), variant.name


def test_the_tree_covers_the_issue_s_base_names():
    wanted = {
        "build-essential", "cmake", "ninja", "python", "uv", "cuda", "cudnn", "tensorrt",
        "numpy", "onnx", "onnxruntime", "opencv", "pytorch", "torchvision", "torchaudio",
        "transformers", "huggingface_hub", "jupyterlab", "scikit-learn", "pandas",
        "l4t-pytorch", "l4t-ml", "llama_cpp", "ollama", "ros",
    }  # fmt: skip
    names = {
        variant.spec.base_name for case in platforms() for variant in catalog(case)[0].variants
    }
    assert wanted <= names
    ros = {v.name for v in catalog(("jp6", "", {}))[0].lookup("ros")}
    assert ros == {
        "ros:humble-ros-base", "ros:humble-desktop", "ros:jazzy-ros-base", "ros:jazzy-desktop",
    }  # fmt: skip


# --- resolution on every platform ---------------------------------------------------------


@pytest.mark.parametrize("case", platforms(), ids=platform_id)
def test_every_available_variant_resolves_into_a_chain(case):
    found, platform = catalog(case)
    env = case[2]
    failures = []
    for variant in found.variants:
        if not variant.is_available:
            continue
        try:
            chain = resolve(found, [variant.name], env).chain
        except ResolutionError as error:
            failures.append(f"{variant.name}: {error}")
            continue
        bases = [v.spec.base_name for v in chain]
        assert len(bases) == len(set(bases)), f"{variant.name}: two variants of one base"
        assert chain[-1] == variant
    assert failures == [], f"on {platform.label}"


@pytest.mark.parametrize("case", platforms(), ids=platform_id)
def test_exactly_one_cuda_and_python_variant_exists_where_any_does(case):
    found, platform = catalog(case)
    for base in ("cuda", "python"):
        available = [v.name for v in found.lookup(base) if v.is_available]
        assert len(available) <= 1, f"{base} on {platform.label}: {available}"
        if available and base == "cuda":
            assert available == [f"cuda:{platform.cuda_version}"]
        if available and base == "python":
            assert available == [f"python:{platform.python_version}"]


@pytest.mark.parametrize("target", ["jp5", "jp6", "jp6.2", "jp7", "x86_64-cu128", "sbsa-cu130"])
def test_cuda_cudnn_and_tensorrt_exist_on_every_gpu_preset(target):
    found, _ = catalog((target, "", {}))
    for base in ("cuda", "cudnn", "tensorrt"):
        assert any(v.is_available for v in found.lookup(base)), f"{base} on {target}"


def test_the_ci_platform_gets_the_cpu_variants():
    found, _ = catalog(("x86_64-cu128", "debian:12", {}))
    chain = [v.name for v in resolve(found, ["onnxruntime", "llama_cpp"], {}).chain]
    assert "onnxruntime:cpu" in chain
    assert "llama_cpp:cpu" in chain
    assert not any(name.startswith("cuda") for name in chain)


# --- golden plans -------------------------------------------------------------------------


def normalized_plan(text: str) -> dict[str, object]:
    """The fields of a ``build --simulate --json`` plan that say what would be built."""
    data = json.loads(text)
    stages = []
    for stage in data["stages"]:
        dockerfile = stage["dockerfile"]
        if dockerfile == str(META_DOCKERFILE):
            dockerfile = "<meta>"
        else:
            dockerfile = os.path.relpath(dockerfile, ROOT)
        stages.append(
            {
                "package": stage["package"],
                "image": stage["image"],
                "base": stage["base"],
                "dockerfile": dockerfile,
                "build_args": stage["build_args"],
                "build_flags": stage["build_flags"],
                "tests": stage["tests"],
            }
        )
    return {
        "platform": data["platform"]["label"],
        "chain": data["chain"],
        "base_image": data["base_image"],
        "final_image": data["final_image"],
        "stages": stages,
    }


def golden_case(jetforge, name: str, target: str, env: dict[str, str], *packages: str) -> None:
    result = jetforge(
        "build", "--simulate", "--json", "--target", target, *packages, env={**CLEAN, **env}
    )
    if result.code == 0:
        document: dict[str, object] = normalized_plan(result.stdout)
    else:
        # Not available there: the exit code and the one-line reason are the golden output.
        assert result.code == 2, result.stderr
        assert result.stdout == ""
        document = {"exit": result.code, "stderr": result.stderr.splitlines()}
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    path = GOLDEN / f"{name}.json"
    if os.environ.get("JETFORGE_UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


@pytest.mark.process
@pytest.mark.parametrize("target", GOLDEN_TARGETS)
@pytest.mark.parametrize("package", GOLDEN_PACKAGES)
def test_golden_plan(jetforge, package, target):
    golden_case(jetforge, f"{package.replace(':', '_')}.{target}", target, {}, package)


CASCADES = {
    # name: (target, environment, packages)
    "l4t-pytorch.jp6.PYTORCH_VERSION=2.6": ("jp6", {"PYTORCH_VERSION": "2.6"}, "l4t-pytorch"),
    "l4t-pytorch.x86_64-cu128.PYTORCH_VERSION=2.7": (
        "x86_64-cu128",
        {"PYTORCH_VERSION": "2.7"},
        "l4t-pytorch",
    ),
    "l4t-pytorch.x86_64-cu128.CUDA_VERSION=12.6+PYTORCH_VERSION=2.6": (
        "x86_64-cu128",
        {"CUDA_VERSION": "12.6", "PYTORCH_VERSION": "2.6"},
        "l4t-pytorch",
    ),
    "tensorrt.jp6.CUDA_VERSION=12.8": ("jp6", {"CUDA_VERSION": "12.8"}, "tensorrt"),
    "tensorrt.jp6.CUDA_VERSION=12.4": ("jp6", {"CUDA_VERSION": "12.4"}, "tensorrt"),
    "tensorrt.x86_64-cu128.CUDA_VERSION=13.0": (
        "x86_64-cu128",
        {"CUDA_VERSION": "13.0"},
        "tensorrt",
    ),
    "l4t-ml.jp6.CUDA_VERSION=12.8": ("jp6", {"CUDA_VERSION": "12.8"}, "l4t-ml"),
    "transformers.jp6.PYTORCH_VERSION=2.5": ("jp6", {"PYTORCH_VERSION": "2.5"}, "transformers"),
    "l4t-pytorch.jp6.PYTORCH_VERSION=2.9": (
        "jp6",
        {"PYTORCH_VERSION": "2.9"},
        "pytorch",
        "l4t-pytorch",
    ),
}


@pytest.mark.process
@pytest.mark.parametrize("name", CASCADES)
def test_golden_cascade(jetforge, name):
    target, env, *packages = CASCADES[name]
    golden_case(jetforge, name, target, env, *packages)


@pytest.mark.process
def test_pytorch_version_picks_torchvision_and_torchaudio(jetforge):
    for version, vision in (("2.5", "0.20"), ("2.6", "0.21"), ("2.7", "0.22"), ("2.8", "0.23")):
        result = jetforge(
            "build", "--simulate", "--json", "--target", "jp6", "l4t-pytorch",
            env={**CLEAN, "PYTORCH_VERSION": version},
        )  # fmt: skip
        chain = json.loads(result.stdout)["chain"]
        assert f"pytorch:{version}" in chain
        assert f"torchvision:{vision}" in chain
        assert f"torchaudio:{version}" in chain


@pytest.mark.process
def test_cuda_version_picks_cudnn_and_tensorrt(jetforge):
    expected = {"12.2": ("8.9", "8.6"), "12.4": ("9.0", "10.0"), "12.6": ("9.3", "10.3")}
    expected["12.8"] = ("9.8", "10.7")
    for cuda, (cudnn, tensorrt) in expected.items():
        result = jetforge(
            "build", "--simulate", "--json", "--target", "jp6", "tensorrt",
            env={**CLEAN, "CUDA_VERSION": cuda},
        )  # fmt: skip
        chain = json.loads(result.stdout)["chain"]
        assert [f"cuda:{cuda}", f"cudnn:{cudnn}", f"tensorrt:{tensorrt}"] == [
            name for name in chain if name.split(":")[0] in ("cuda", "cudnn", "tensorrt")
        ]


# --- docs/packages.md ---------------------------------------------------------------------


@pytest.mark.process
def test_docs_packages_md_is_current(jetforge):
    result = jetforge(
        "docs", "packages", "--output", str(ROOT / "docs" / "packages.md"), "--check", env=CLEAN
    )
    assert result.code == 0, result.stderr


@pytest.mark.process
def test_docs_check_reports_a_stale_page(jetforge, tmp_path):
    stale = tmp_path / "packages.md"
    stale.write_text("# Packages\n")
    result = jetforge("docs", "packages", "--output", str(stale), "--check", env=CLEAN)
    assert result.code == 1
    assert f"jetforge docs packages --output {stale}" in result.stderr
    assert jetforge("docs", "packages", "--output", str(stale), env=CLEAN).code == 0
    assert jetforge("docs", "packages", "--output", str(stale), "--check", env=CLEAN).code == 0


@pytest.mark.process
def test_docs_page_lists_every_base_name_with_tier_and_platforms():
    text = render_packages(platform_columns(PACKAGES), PACKAGES)
    assert "| name | variants | platforms | tier | notes |" in text
    for line in text.splitlines():
        if line.startswith("| [`ros`]"):
            assert "jp6, jp6.2, jp7" in line
            assert "jp5" not in line
            assert "| plan |" in line
        if line.startswith("| [`numpy`]"):
            assert "| 1, 2 |" in line
            assert "| e2e |" in line
    assert "## pytorch" in text
    assert "| `pytorch:2.1` |" in text
