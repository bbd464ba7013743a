"""The platform value, its detection on fixture host roots, presets and overrides."""

from __future__ import annotations

import json
import types
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from packaging.version import Version

from jetforge.core.platform import (
    Distro,
    Platform,
    parse_cuda_version,
    parse_distro,
    parse_tegra_release,
)
from jetforge.errors import PlatformError
from jetforge.host.platform import detect_platform
from jetforge.host.platform_data import target_names
from jetforge.host.process import Completed

HOSTS = Path(__file__).parent / "fixtures" / "hosts"


class FakeRunner:
    """Answers ``uname``, ``nvcc`` and ``nvidia-smi`` with canned output; records calls."""

    def __init__(self, **stdout: str) -> None:
        self.stdout = {name.replace("_", "-"): text for name, text in stdout.items()}
        self.calls: list[tuple[str, ...]] = []

    def __call__(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, **_: object
    ) -> Completed:
        self.calls.append(tuple(argv))
        text = self.stdout.get(argv[0])
        if text is None:
            return Completed(tuple(argv), 127, "", f"{argv[0]}: not found")
        return Completed(tuple(argv), 0, text, "")

    @property
    def programs(self) -> list[str]:
        return [argv[0] for argv in self.calls]


NVCC = "nvcc: NVIDIA (R) Cuda compiler driver\nCuda compilation tools, release 12.4, V12.4.131\n"
SMI = "| NVIDIA-SMI 570.86.15   Driver Version: 570.86.15   CUDA Version: 12.8     |\n"


def detect(
    host: str,
    env: Mapping[str, str] | None = None,
    *,
    runner: FakeRunner | None = None,
    distro: str | None = None,
) -> Platform:
    """Detect on a fixture host root; the runner's ``uname`` answer is the machine
    (default x86_64), its other programs answer the CUDA probes."""
    runner = runner or FakeRunner(uname="x86_64\n")
    return detect_platform(
        env or {},
        root=HOSTS / host,
        runner=runner,
        distro=distro,
        machine=runner.stdout.get("uname", "").strip() or None,
    )


# --- Distro -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name", "release"),
    [
        ("ubuntu:22.04", "ubuntu", "22.04"),
        ("ubuntu22.04", "ubuntu", "22.04"),
        ("22.04", "ubuntu", "22.04"),
        (" Ubuntu:24.04 ", "ubuntu", "24.04"),
        ("debian:12", "debian", "12"),
        ("debian12", "debian", "12"),
    ],
)
def test_parse_distro_accepts_the_documented_forms(text: str, name: str, release: str) -> None:
    assert parse_distro(text) == Distro(name, release)


@pytest.mark.parametrize("text", ["", "ubuntu", "12", "ubuntu:jammy", "22.04:ubuntu", "deb ian:12"])
def test_parse_distro_rejects_junk(text: str) -> None:
    with pytest.raises(PlatformError, match="bad distro"):
        parse_distro(text)


def test_distro_text_tag_part_and_version() -> None:
    ubuntu, debian = Distro("ubuntu", "22.04"), Distro("debian", "12")
    assert (str(ubuntu), ubuntu.tag_part, ubuntu.version) == (
        "ubuntu:22.04",
        "22.04",
        Version("22.4"),
    )
    assert (str(debian), debian.tag_part, debian.version) == (
        "debian:12",
        "debian12",
        Version("12"),
    )


# --- presets ------------------------------------------------------------------------------


def test_target_names_in_data_file_order() -> None:
    assert target_names() == (
        "jp4",
        "jp5",
        "jp6",
        "jp6.2",
        "jp7",
        "x86_64-cu126",
        "x86_64-cu128",
        "x86_64-cu130",
        "sbsa-cu128",
        "sbsa-cu130",
    )


PRESETS = {
    "jp4": (
        "r32.7.1-cu102-18.04",
        "l4t-32.7.1 cuda-10.2 ubuntu-18.04 tegra-aarch64",
        "nvcr.io/nvidia/l4t-base:r32.7.1",
        (
            ("SYSTEM_ARCH", "aarch64"),
            ("CUDA_ARCH", "tegra-aarch64"),
            ("L4T_VERSION", "32.7.1"),
            ("JETPACK_VERSION", "4.6.1"),
            ("CUDA_VERSION", "10.2"),
            ("CUDA_ARCHITECTURES", "53;62;72"),
            ("PYTHON_VERSION", "3.6"),
            ("LSB_RELEASE", "18.04"),
            ("DISTRO", "ubuntu:18.04"),
        ),
    ),
    "jp5": (
        "r35.4.1-cu114-20.04",
        "l4t-35.4.1 cuda-11.4 ubuntu-20.04 tegra-aarch64",
        "nvcr.io/nvidia/l4t-jetpack:r35.4.1",
        (
            ("SYSTEM_ARCH", "aarch64"),
            ("CUDA_ARCH", "tegra-aarch64"),
            ("L4T_VERSION", "35.4.1"),
            ("JETPACK_VERSION", "5.1.2"),
            ("CUDA_VERSION", "11.4"),
            ("CUDA_ARCHITECTURES", "72;87"),
            ("PYTHON_VERSION", "3.8"),
            ("LSB_RELEASE", "20.04"),
            ("DISTRO", "ubuntu:20.04"),
        ),
    ),
    "jp6": (
        "r36.4.0-cu126-22.04",
        "l4t-36.4.0 cuda-12.6 ubuntu-22.04 tegra-aarch64",
        "ubuntu:22.04",
        (
            ("SYSTEM_ARCH", "aarch64"),
            ("CUDA_ARCH", "tegra-aarch64"),
            ("L4T_VERSION", "36.4.0"),
            ("JETPACK_VERSION", "6.1"),
            ("CUDA_VERSION", "12.6"),
            ("CUDA_ARCHITECTURES", "87"),
            ("PYTHON_VERSION", "3.10"),
            ("LSB_RELEASE", "22.04"),
            ("DISTRO", "ubuntu:22.04"),
        ),
    ),
    "jp6.2": (
        "r36.4.3-cu126-22.04",
        "l4t-36.4.3 cuda-12.6 ubuntu-22.04 tegra-aarch64",
        "ubuntu:22.04",
        (
            ("SYSTEM_ARCH", "aarch64"),
            ("CUDA_ARCH", "tegra-aarch64"),
            ("L4T_VERSION", "36.4.3"),
            ("JETPACK_VERSION", "6.2"),
            ("CUDA_VERSION", "12.6"),
            ("CUDA_ARCHITECTURES", "87"),
            ("PYTHON_VERSION", "3.10"),
            ("LSB_RELEASE", "22.04"),
            ("DISTRO", "ubuntu:22.04"),
        ),
    ),
    "jp7": (
        "r38.2.0-cu130-24.04",
        "l4t-38.2.0 cuda-13.0 ubuntu-24.04 tegra-aarch64",
        "ubuntu:24.04",
        (
            ("SYSTEM_ARCH", "aarch64"),
            ("CUDA_ARCH", "tegra-aarch64"),
            ("L4T_VERSION", "38.2.0"),
            ("JETPACK_VERSION", "7.0"),
            ("CUDA_VERSION", "13.0"),
            ("CUDA_ARCHITECTURES", "110"),
            ("PYTHON_VERSION", "3.12"),
            ("LSB_RELEASE", "24.04"),
            ("DISTRO", "ubuntu:24.04"),
        ),
    ),
    "x86_64-cu126": (
        "x86_64-cu126-24.04",
        "cuda-12.6 ubuntu-24.04 x86_64",
        "ubuntu:24.04",
        (
            ("SYSTEM_ARCH", "x86_64"),
            ("CUDA_ARCH", "x86_64"),
            ("CUDA_VERSION", "12.6"),
            ("CUDA_ARCHITECTURES", "75;80;86;89;90"),
            ("PYTHON_VERSION", "3.12"),
            ("LSB_RELEASE", "24.04"),
            ("DISTRO", "ubuntu:24.04"),
        ),
    ),
    "x86_64-cu128": (
        "x86_64-cu128-24.04",
        "cuda-12.8 ubuntu-24.04 x86_64",
        "ubuntu:24.04",
        (
            ("SYSTEM_ARCH", "x86_64"),
            ("CUDA_ARCH", "x86_64"),
            ("CUDA_VERSION", "12.8"),
            ("CUDA_ARCHITECTURES", "75;80;86;89;90;100;120"),
            ("PYTHON_VERSION", "3.12"),
            ("LSB_RELEASE", "24.04"),
            ("DISTRO", "ubuntu:24.04"),
        ),
    ),
    "x86_64-cu130": (
        "x86_64-cu130-24.04",
        "cuda-13.0 ubuntu-24.04 x86_64",
        "ubuntu:24.04",
        (
            ("SYSTEM_ARCH", "x86_64"),
            ("CUDA_ARCH", "x86_64"),
            ("CUDA_VERSION", "13.0"),
            ("CUDA_ARCHITECTURES", "75;80;86;89;90;100;120"),
            ("PYTHON_VERSION", "3.12"),
            ("LSB_RELEASE", "24.04"),
            ("DISTRO", "ubuntu:24.04"),
        ),
    ),
    "sbsa-cu128": (
        "sbsa-cu128-24.04",
        "cuda-12.8 ubuntu-24.04 aarch64-sbsa",
        "ubuntu:24.04",
        (
            ("SYSTEM_ARCH", "aarch64"),
            ("CUDA_ARCH", "aarch64-sbsa"),
            ("CUDA_VERSION", "12.8"),
            ("CUDA_ARCHITECTURES", "80;90;100;120"),
            ("PYTHON_VERSION", "3.12"),
            ("LSB_RELEASE", "24.04"),
            ("DISTRO", "ubuntu:24.04"),
        ),
    ),
    "sbsa-cu130": (
        "sbsa-cu130-24.04",
        "cuda-13.0 ubuntu-24.04 aarch64-sbsa",
        "ubuntu:24.04",
        (
            ("SYSTEM_ARCH", "aarch64"),
            ("CUDA_ARCH", "aarch64-sbsa"),
            ("CUDA_VERSION", "13.0"),
            ("CUDA_ARCHITECTURES", "80;90;100;110;120;121"),
            ("PYTHON_VERSION", "3.12"),
            ("LSB_RELEASE", "24.04"),
            ("DISTRO", "ubuntu:24.04"),
        ),
    ),
}


def test_every_preset_has_a_golden_case() -> None:
    assert set(PRESETS) == set(target_names())


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_tag_label_base_and_build_args(name: str) -> None:
    runner = FakeRunner()
    found = detect_platform({}, root=HOSTS / "orin-r36.4.3", runner=runner, target=name)
    tag_postfix, label, base_image, build_args = PRESETS[name]
    assert found.tag_postfix == tag_postfix
    assert found.label == label
    assert found.base_image == base_image
    assert found.build_args() == build_args
    assert (found.target, found.overridden, found.warnings) == (name, (), ())
    assert runner.calls == []  # a preset never looks at the host


def test_unknown_target_lists_the_valid_names() -> None:
    with pytest.raises(PlatformError) as caught:
        detect_platform({}, target="jp66", runner=FakeRunner())
    message = str(caught.value)
    assert "unknown target 'jp66'" in message
    assert "did you mean 'jp6'?" in message
    assert ", ".join(target_names()) in message


def test_env_overrides_apply_on_top_of_a_preset() -> None:
    found = detect_platform(
        {"CUDA_VERSION": "12.8", "PYTHON_VERSION": "3.12"}, target="jp6", runner=FakeRunner()
    )
    assert found.tag_postfix == "r36.4.0-cu128-22.04"
    assert found.python_version == Version("3.12")
    assert found.overridden == ("cuda_version", "python_version")
    assert found.target == "jp6"


def test_l4t_override_on_a_server_preset_is_an_error() -> None:
    with pytest.raises(PlatformError, match="L4T_VERSION applies to Jetson"):
        detect_platform({"L4T_VERSION": "36.4.0"}, target="x86_64-cu128", runner=FakeRunner())


# --- detection on fixture host roots ------------------------------------------------------


def test_orin_with_nv_tegra_release() -> None:
    runner = FakeRunner(uname="aarch64\n", nvcc=NVCC, nvidia_smi=SMI)
    found = detect("orin-r36.4.3", runner=runner)
    assert found.is_jetson
    assert (found.arch, found.cuda_arch) == ("aarch64", "tegra-aarch64")
    assert (found.l4t_version, found.jetpack_version) == (Version("36.4.3"), Version("6.2"))
    assert found.cuda_version == Version("12.6")  # the table's, not nvcc's or nvidia-smi's
    assert found.tag_postfix == "r36.4.3-cu126-22.04"
    assert (found.target, found.overridden, found.warnings) == (None, (), ())
    assert runner.calls == []


def test_jetson_cuda_from_version_json() -> None:
    found = detect("orin-r36.4.3-cuda12.8")
    assert found.cuda_version == Version("12.8")
    assert found.tag_postfix == "r36.4.3-cu128-22.04"
    assert found.overridden == ()


def test_xavier_r35() -> None:
    found = detect("xavier-r35.4.1")
    assert found.label == "l4t-35.4.1 cuda-11.4 ubuntu-20.04 tegra-aarch64"
    assert found.base_image == "nvcr.io/nvidia/l4t-jetpack:r35.4.1"
    assert (found.gpu_archs, found.python_version) == ((72, 87), Version("3.8"))


def test_nano_r32_cuda_from_version_txt() -> None:
    found = detect("nano-r32.7.1")
    assert found.tag_postfix == "r32.7.1-cu102-18.04"
    assert found.jetpack_version == Version("4.6.1")


def test_unknown_l4t_revision_falls_back_with_one_warning() -> None:
    found = detect("orin-r36.9.0")
    assert found.l4t_version == Version("36.9.0")
    assert found.jetpack_version == Version("6.2.1")
    assert found.tag_postfix == "r36.9.0-cu126-22.04"
    assert found.warnings == (
        "L4T 36.9.0 is not in the platform table; using the defaults of 36.4.7",
    )


@pytest.mark.parametrize(
    ("l4t", "defaults"),
    [
        ("36.5", "36.4.7"),  # same major
        ("r33.1.0", "32.7.6"),  # no release of that major: nearest lower overall
        ("40.0.0", "38.4.0"),
        ("30.0", "32.6.1"),  # nothing lower at all: the lowest known
    ],
)
def test_l4t_fallback_never_crashes(l4t: str, defaults: str) -> None:
    found = detect("orin-r36.4.3", {"L4T_VERSION": l4t})
    assert len(found.warnings) == 1
    assert found.warnings[0].endswith(f"using the defaults of {defaults}")
    assert found.overridden == ("l4t_version",)


def test_jetson_model_without_release_file_assumes_by_model() -> None:
    found = detect("thor-model-only")
    assert found.l4t_version == Version("38.2.0")
    assert found.gpu_archs == (110,)
    assert found.warnings == (
        "cannot read the L4T release of NVIDIA Jetson AGX Thor Developer Kit; "
        "assuming L4T 38.2.0 (set L4T_VERSION to choose)",
    )


def test_garbled_release_file_falls_back_to_the_model() -> None:
    found = detect("tegra-garbled")
    assert found.l4t_version == Version("35.6.2")
    assert len(found.warnings) == 1


def test_l4t_override_silences_the_model_assumption() -> None:
    found = detect("thor-model-only", {"L4T_VERSION": "38.4.0"})
    assert (found.l4t_version, found.warnings) == (Version("38.4.0"), ())


def test_x86_host_cuda_from_version_json() -> None:
    runner = FakeRunner(uname="x86_64\n", nvcc=NVCC, nvidia_smi=SMI)
    found = detect("x86-cuda12.6", runner=runner)
    assert (found.arch, found.cuda_arch, found.l4t_version) == ("x86_64", "x86_64", None)
    assert found.cuda_version == Version("12.6")
    assert found.gpu_archs == (75, 80, 86, 89, 90)  # nothing CUDA 12.6 cannot compile
    assert found.tag_postfix == "x86_64-cu126-24.04"
    assert found.label == "cuda-12.6 ubuntu-24.04 x86_64"
    assert runner.programs == []


def test_x86_host_cuda_from_nvcc_then_nvidia_smi_then_default() -> None:
    assert detect(
        "empty", runner=FakeRunner(uname="x86_64", nvcc=NVCC, nvidia_smi=SMI)
    ).cuda_version == Version("12.4")
    assert detect(
        "empty", runner=FakeRunner(uname="x86_64", nvidia_smi=SMI)
    ).cuda_version == Version("12.8")
    runner = FakeRunner(uname="x86_64")
    found = detect("empty", runner=runner)
    assert found.cuda_version == Version("12.8")
    assert found.gpu_archs == (75, 80, 86, 89, 90, 100, 120)
    assert (found.python_version, str(found.distro), found.base_image) == (
        Version("3.12"),
        "ubuntu:24.04",
        "ubuntu:24.04",
    )
    assert runner.programs == ["nvcc", "nvidia-smi"]


def test_sbsa_host() -> None:
    found = detect("empty", runner=FakeRunner(uname="arm64\n", nvidia_smi=SMI))
    assert (found.arch, found.cuda_arch, found.is_jetson) == ("aarch64", "aarch64-sbsa", False)
    assert found.tag_postfix == "sbsa-cu128-24.04"
    assert found.gpu_archs == (80, 90, 100, 120)
    assert detect("empty", runner=FakeRunner(uname="aarch64")).tag_postfix == "sbsa-cu130-24.04"


def test_cuda_override_skips_the_host_probes() -> None:
    runner = FakeRunner(uname="x86_64", nvcc=NVCC)
    found = detect("x86-cuda12.6", {"CUDA_VERSION": "cu130"}, runner=runner)
    assert found.cuda_version == Version("13.0")
    assert found.overridden == ("cuda_version",)
    assert runner.programs == []


def test_unknown_architecture_does_not_crash() -> None:
    found = detect("empty", runner=FakeRunner(uname="ppc64le\n"))
    assert (found.arch, found.cuda_arch) == ("ppc64le", "x86_64")
    assert found.warnings == (
        "unknown architecture 'ppc64le'; using the x86_64 defaults (set SYSTEM_ARCH)",
    )


def test_the_machine_comes_from_uname_when_none_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.uname", lambda: types.SimpleNamespace(machine="arm64"))
    found = detect("empty", runner=FakeRunner())
    assert (found.arch, found.cuda_arch, found.warnings) == ("aarch64", "aarch64-sbsa", ())


# --- overrides ----------------------------------------------------------------------------


def test_every_override_is_applied_and_listed() -> None:
    env = {
        "SYSTEM_ARCH": "arm64",
        "CUDA_ARCH": "tegra",
        "L4T_VERSION": "r36.4.0",
        "JETPACK_VERSION": "6.1",
        "CUDA_VERSION": "12.9.1",
        "PYTHON_VERSION": "py311",
        "LSB_RELEASE": "24.04",
        "CUDA_ARCHITECTURES": "8.7;110",
    }
    runner = FakeRunner(nvcc=NVCC)
    found = detect("empty", env, runner=runner)
    assert found.build_args() == (
        ("SYSTEM_ARCH", "aarch64"),
        ("CUDA_ARCH", "tegra-aarch64"),
        ("L4T_VERSION", "36.4.0"),
        ("JETPACK_VERSION", "6.1"),
        ("CUDA_VERSION", "12.9"),
        ("CUDA_ARCHITECTURES", "87;110"),
        ("PYTHON_VERSION", "3.11"),
        ("LSB_RELEASE", "24.04"),
        ("DISTRO", "ubuntu:24.04"),
    )
    assert found.base_image == "ubuntu:24.04"
    assert found.overridden == (
        "arch",
        "cuda_arch",
        "cuda_version",
        "distro",
        "gpu_archs",
        "jetpack_version",
        "l4t_version",
        "python_version",
    )
    assert runner.calls == []


def test_empty_variables_are_not_overrides() -> None:
    found = detect("orin-r36.4.3", {"CUDA_VERSION": "", "L4T_VERSION": "  "})
    assert found.overridden == ()


def test_distro_flag_beats_lsb_release_and_python_and_base_follow() -> None:
    found = detect("orin-r36.4.3", {"LSB_RELEASE": "ubuntu:24.04"}, distro="debian:12")
    assert str(found.distro) == "debian:12"
    assert found.python_version == Version("3.11")
    assert found.base_image == "debian:12"
    assert found.tag_postfix == "r36.4.3-cu126-debian12"
    assert found.label == "l4t-36.4.3 cuda-12.6 debian-12 tegra-aarch64"
    assert found.overridden == ("distro",)


def test_distro_without_known_python_warns_and_uses_the_nearest() -> None:
    found = detect("empty", {"LSB_RELEASE": "26.04"})
    assert found.python_version == Version("3.12")
    assert found.warnings == (
        "no default Python known for ubuntu:26.04; using 3.12 (set PYTHON_VERSION to choose)",
    )
    assert detect("empty", {"LSB_RELEASE": "26.04", "PYTHON_VERSION": "3.13"}).warnings == ()


def test_l4t_override_on_an_x86_host_plans_for_a_jetson() -> None:
    runner = FakeRunner(uname="x86_64", nvcc=NVCC)
    found = detect("empty", {"L4T_VERSION": "36.4.3"}, runner=runner)
    assert (found.arch, found.cuda_arch) == ("aarch64", "tegra-aarch64")
    assert found.tag_postfix == "r36.4.3-cu126-22.04"
    assert "nvcc" not in runner.programs


def test_system_arch_moves_a_jetson_host_to_x86_defaults() -> None:
    found = detect("orin-r36.4.3", {"SYSTEM_ARCH": "amd64"})
    assert (found.arch, found.cuda_arch, found.l4t_version) == ("x86_64", "x86_64", None)
    assert found.overridden == ("arch",)


def test_cuda_arch_override_implies_the_arch() -> None:
    found = detect("empty", {"CUDA_ARCH": "sbsa"}, runner=FakeRunner(uname="x86_64", nvcc=NVCC))
    assert (found.arch, found.tag_postfix) == ("aarch64", "sbsa-cu130-24.04")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SYSTEM_ARCH", "ppc64le"),
        ("CUDA_ARCH", "arm"),
        ("L4T_VERSION", "thirty-six"),
        ("JETPACK_VERSION", "6.x"),
        ("CUDA_VERSION", "banana"),
        ("PYTHON_VERSION", "three"),
        ("LSB_RELEASE", "jammy"),
        ("CUDA_ARCHITECTURES", "87;native"),
    ],
)
def test_bad_override_names_the_variable_and_valid_forms(variable: str, value: str) -> None:
    with pytest.raises(PlatformError) as caught:
        detect("orin-r36.4.3", {variable: value})
    assert str(caught.value).startswith(f"{variable}: '{value}' is not valid (valid: ")


def test_bad_distro_flag() -> None:
    with pytest.raises(PlatformError, match="bad distro 'jammy'"):
        detect("empty", distro="jammy")


@pytest.mark.parametrize(
    "env",
    [
        {"SYSTEM_ARCH": "x86_64", "CUDA_ARCH": "tegra-aarch64"},
        {"CUDA_ARCH": "x86_64", "L4T_VERSION": "36.4.0"},
        {"CUDA_ARCH": "x86_64", "JETPACK_VERSION": "6.2"},
    ],
)
def test_conflicting_overrides_are_errors(env: dict[str, str]) -> None:
    with pytest.raises(PlatformError):
        detect("empty", env)


# --- pure parsers and serialisation -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12.6", "12.6"),
        ("12.6.77", "12.6"),
        ("cu126", "12.6"),
        ("cu12.6", "12.6"),
        ("126", "12.6"),
        ("CU130", "13.0"),
        ("102", "10.2"),
        ("13", "13.0"),
        ("banana", None),
        ("", None),
    ],
)
def test_parse_cuda_version(text: str, expected: str | None) -> None:
    parsed = parse_cuda_version(text)
    assert (None if parsed is None else str(parsed)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic", "36.4.3"),
        ("# R32 (release), REVISION: 7.1, GCID: 29818004", "32.7.1"),
        ("# R38 (release), REVISION: 2", "38.2.0"),
        ("garbage", None),
        ("", None),
    ],
)
def test_parse_tegra_release(text: str, expected: str | None) -> None:
    parsed = parse_tegra_release(text)
    assert (None if parsed is None else str(parsed)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("87", (87,)),
        ("87;110", (87, 110)),
        ("8.7", (87,)),
        ("75,80", (75, 80)),
        ("sm_90 12.0", (90, 120)),
    ],
)
def test_gpu_archs_override_forms(text: str, expected: tuple[int, ...]) -> None:
    assert detect("orin-r36.4.3", {"CUDA_ARCHITECTURES": text}).gpu_archs == expected


def test_to_json_is_json_friendly() -> None:
    found = detect_platform({"CUDA_VERSION": "12.8"}, target="jp6.2", runner=FakeRunner())
    data = found.to_json()
    assert json.loads(json.dumps(data)) == data
    assert data == {
        "arch": "aarch64",
        "cuda_arch": "tegra-aarch64",
        "l4t_version": "36.4.3",
        "jetpack_version": "6.2",
        "cuda_version": "12.8",
        "python_version": "3.10",
        "distro": "ubuntu:22.04",
        "gpu_archs": [87],
        "base_image": "ubuntu:22.04",
        "target": "jp6.2",
        "overridden": ["cuda_version"],
        "warnings": [],
        "tag_postfix": "r36.4.3-cu128-22.04",
        "label": "l4t-36.4.3 cuda-12.8 ubuntu-22.04 tegra-aarch64",
    }
    server = detect_platform({}, target="x86_64-cu128", runner=FakeRunner()).to_json()
    assert (server["l4t_version"], server["jetpack_version"]) == (None, None)


PLATFORMS_MD_ROWS = [
    *("32.6.1", "32.7.1", "32.7.2", "32.7.3", "32.7.4", "32.7.5", "32.7.6"),
    *("35.1.0", "35.2.1", "35.3.1", "35.4.1", "35.5.0", "35.6.0", "35.6.1", "35.6.2"),
    *("36.2.0", "36.3.0", "36.4.0", "36.4.2", "36.4.3", "36.4.4", "36.4.7"),
    *("38.1.0", "38.2.0", "38.2.1", "38.2.2", "38.4.0"),
]


@pytest.mark.parametrize("row", PLATFORMS_MD_ROWS)
def test_every_l4t_row_of_platforms_md_is_known(row: str) -> None:
    found = detect("orin-r36.4.3", {"L4T_VERSION": row})
    assert (str(found.l4t_version), found.warnings) == (row, ())
