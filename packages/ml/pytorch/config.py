"""pytorch:<X.Y>, torchvision:<X.Y> and torchaudio:<X.Y> from one table.

Each torchvision/torchaudio variant depends on its exact pytorch variant
(torchvision:0.23 → pytorch:2.8), so PYTORCH_VERSION picks all three. Where the wheels
come from depends on the platform:

- JetPack 5 (L4T r35, CUDA 11.4, Python 3.8): NVIDIA's PyTorch 2.1 wheel for JetPack
  5.1.2; torchvision and torchaudio are built from source (GitHub).
- JetPack 6 (L4T r36, Python 3.10): the Jetson AI Lab index for the platform's CUDA.
- JetPack 7 (L4T r38, CUDA 13.0) and Arm servers: download.pytorch.org's CUDA indexes.
- x86_64: PyPI where PyPI's default wheel is built for the platform's CUDA release,
  download.pytorch.org/whl/cuXYZ otherwise.

On servers a variant exists when PyTorch publishes a build for a CUDA release of the
platform's CUDA major that is not newer than the platform's CUDA (minor-version
compatibility); the newest such build is used.
"""

from packaging.version import Version

COMPANIONS = {  # pytorch: (torchvision, torchaudio)
    "2.1": ("0.16", "2.1"),
    "2.5": ("0.20", "2.5"),
    "2.6": ("0.21", "2.6"),
    "2.7": ("0.22", "2.7"),
    "2.8": ("0.23", "2.8"),
    "2.9": ("0.24", "2.9"),
}
PYTORCH_INDEX = "https://download.pytorch.org/whl"
JETSON_AI_LAB = "https://pypi.jetson-ai-lab.io"
NVIDIA_JP5_WHEEL = (
    "https://developer.download.nvidia.com/compute/redist/jp/v512/pytorch/"
    "torch-2.1.0a0+41361538.nv23.06-cp38-cp38-linux_aarch64.whl"
)
CUSPARSELT = (
    "https://developer.download.nvidia.com/compute/cusparselt/redist/libcusparse_lt/"
    "linux-aarch64/libcusparse_lt-linux-aarch64-0.6.3.2-archive.tar.xz"
)

# Jetson rows: (L4T predicate, CUDA, Python predicate, PyTorch releases, where from).
JETSON = (
    ("==r35.*", "11.4", "==py3.8", ("2.1",), "nvidia-wheel"),
    ("==r36.*", "12.6", "==py3.10", ("2.5", "2.6", "2.7", "2.8"), "jetson-ai-lab"),
    ("==r36.*", "12.8", "==py3.10", ("2.8",), "jetson-ai-lab"),
    (">=r38", "13.0", ">=py3.10", ("2.9",), "pytorch-index"),
)
# Server CUDA builds on download.pytorch.org, per architecture.
SERVER = {
    "x86_64": {
        "2.5": ("12.1", "12.4"),
        "2.6": ("12.4", "12.6"),
        "2.7": ("12.6", "12.8"),
        "2.8": ("12.6", "12.8", "12.9"),
        "2.9": ("12.6", "12.8", "13.0"),
    },
    "aarch64-sbsa": {"2.7": ("12.8",), "2.8": ("12.8", "12.9"), "2.9": ("12.8", "13.0")},
}
PYPI_DEFAULT_CUDA = {"2.5": "12.4", "2.6": "12.4", "2.7": "12.6", "2.8": "12.8", "2.9": "12.8"}
SERVER_PYTHON = {"2.5": ["<py3.13"]}


def tag(cuda):
    return "cu" + cuda.replace(".", "")


def jetson_source(torch, platform):
    """(requires, install args, where) of ``torch`` on a Jetson."""
    rows = [row for row in JETSON if torch in row[3]]
    if not rows:
        return ["!=tegra"], {}, ""
    here = [
        row
        for row in rows
        if Version(row[1]) == platform.cuda_version
        and platform.l4t_version is not None
        and f"r{platform.l4t_version.major}" in row[0]
    ]
    l4t, cuda, python, _, source = (here or rows)[0]
    requires = ["tegra", l4t, f"==cu{cuda}", python]
    if source == "nvidia-wheel":
        return requires, {"TORCH_WHEEL_URL": NVIDIA_JP5_WHEEL}, "NVIDIA's JetPack 5.1.2 wheel"
    if source == "jetson-ai-lab":
        args = {"TORCH_INDEX_URL": f"{JETSON_AI_LAB}/jp6/{tag(cuda)}", "CUSPARSELT_URL": CUSPARSELT}
        return requires, args, f"the Jetson AI Lab index (jp6/{tag(cuda)})"
    return (
        requires,
        {"TORCH_INDEX_URL": f"{PYTORCH_INDEX}/{tag(cuda)}"},
        f"{PYTORCH_INDEX}/{tag(cuda)}",
    )


def server_source(torch, platform):
    """(requires, install args, where) of ``torch`` on x86_64 or an Arm server."""
    builds = SERVER[platform.cuda_arch].get(torch)
    python = [">=py3.9", *SERVER_PYTHON.get(torch, ["<py3.14"])]
    if not builds:
        # Offered only where it is built: the other server architecture, or Jetson.
        elsewhere = [arch for arch, table in SERVER.items() if torch in table]
        word = "x86_64" if elsewhere == ["x86_64"] else "tegra"
        return [word, *python], {}, ""
    major = platform.cuda_version.major
    same_major = [b for b in builds if Version(b).major == major]
    usable = [b for b in same_major if Version(b) <= platform.cuda_version]
    if not usable:
        return [f">=cu{builds[0]}", f"<=cu{builds[-1]}", *python], {}, ""
    cuda = usable[-1]
    requires = [f">=cu{same_major[0]}", f"<cu{major + 1}.0", *python]
    if platform.cuda_arch == "x86_64" and PYPI_DEFAULT_CUDA.get(torch) == cuda:
        return requires, {}, f"PyPI (built for CUDA {cuda})"
    return (
        requires,
        {"TORCH_INDEX_URL": f"{PYTORCH_INDEX}/{tag(cuda)}"},
        f"{PYTORCH_INDEX}/{tag(cuda)}",
    )


def configure(package, platform):
    variants = []
    arch_list = ";".join(f"{sm // 10}.{sm % 10}" for sm in platform.gpu_archs)
    depends = ["build-essential", "python", "numpy"]
    if platform.is_jetson:
        depends += ["cuda", "cudnn"]  # Jetson wheels link against the system's CUDA stack
    for torch, (vision, audio) in COMPANIONS.items():
        if platform.is_jetson:
            requires, args, where = jetson_source(torch, platform)
        else:
            requires, args, where = server_source(torch, platform)
        from_source = "TORCH_WHEEL_URL" in args  # JetPack 5: companions built from source
        tier = "manual" if platform.arch == "x86_64" else "plan"
        variants.append(
            package.replace(
                name=f"pytorch:{torch}",
                alias=[f"torch:{torch}"],
                depends=depends,
                requires=requires,
                build_args={
                    "TORCH_PACKAGE": "torch" if from_source else f"torch=={torch}.*",
                    "TORCH_CUDA_ARCH_LIST": arch_list,
                    **args,
                },
                tier=tier,
                notes=f"PyTorch {torch} (CUDA build) from {where}."
                if where
                else f"PyTorch {torch}: no build for this platform.",
            )
        )
        index = {k: v for k, v in args.items() if k == "TORCH_INDEX_URL"}
        for name, version, repository in (
            ("torchvision", vision, "vision"),
            ("torchaudio", audio, "audio"),
        ):
            if from_source:
                github = f"git+https://github.com/pytorch/{repository}@v{version}.0"
                build = {"COMPANION_PACKAGE": github, "COMPANION_FROM_SOURCE": "1"}
                how = "built from source (GitHub)"
            else:
                build = {"COMPANION_PACKAGE": f"{name}=={version}.*", **index}
                how = f"from {where}" if where else "no build for this platform"
            variants.append(
                package.replace(
                    name=f"{name}:{version}",
                    alias=[],
                    depends=[f"pytorch:{torch}", *(["cmake", "ninja"] if from_source else [])],
                    requires=requires,
                    dockerfile=f"Dockerfile.{name}",
                    test=[f"test_{name}.py"],
                    build_args=build,
                    tier=tier,
                    notes=f"{name} {version}, the release for PyTorch {torch}, {how}.",
                )
            )
    return variants
