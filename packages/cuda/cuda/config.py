"""cuda:<X.Y> variants; exactly one is available on a platform, the platform's CUDA.

Every variant requires ``==cu<X.Y>``, so the platform's CUDA (from the host, the
``--target`` preset or CUDA_VERSION) picks it; the rest of each row says where that
release comes from on this kind of platform, or why it does not exist there.
"""

DOWNLOADS = "https://developer.download.nvidia.com/compute/cuda"

# JetPack 6 (L4T r36): JetPack's own repository for the release it ships, NVIDIA's
# Jetson ("tegra") local installers for the others.
JETPACK6 = {
    "12.2": ("jetson-repo", "r36.3"),
    "12.4": (
        "local-repo",
        f"{DOWNLOADS}/12.4.1/local_installers/cuda-tegra-repo-ubuntu2204-12-4-local_12.4.1-1_arm64.deb",
    ),
    "12.6": ("jetson-repo", "r36.4"),
    "12.8": (
        "local-repo",
        f"{DOWNLOADS}/12.8.1/local_installers/cuda-tegra-repo-ubuntu2204-12-8-local_12.8.1-1_arm64.deb",
    ),
}
# The oldest Ubuntu release of NVIDIA's network repository that carries each release.
NETWORK_FROM = {"12.2": "22.04", "12.4": "22.04", "12.6": "22.04", "12.8": "22.04", "13.0": "22.04"}
NETWORK_UNTIL = {"12.2": "22.04", "12.4": "22.04"}  # not in the 24.04 repository


def network_keyring(platform, repo_arch):
    release = platform.distro.release.replace(".", "")
    return f"{DOWNLOADS}/repos/ubuntu{release}/{repo_arch}/cuda-keyring_1.1-1_all.deb"


def source_for(version, platform):
    """(requires, source, location, tier text) of cuda:<version> on this platform."""
    if version == "11.4":
        # JetPack 5: the l4t-jetpack base image already holds CUDA 11.4.
        return ["tegra", "==r35.*"], "builtin", "-", "built into the l4t-jetpack base image"
    if platform.is_jetson and version in JETPACK6:
        source, location = JETPACK6[version]
        where = (
            "JetPack's apt repository"
            if source == "jetson-repo"
            else "NVIDIA's Jetson local installer"
        )
        return ["tegra", "==r36.*"], source, location, where
    if platform.is_jetson:
        # JetPack 7 (Thor) uses the same CUDA packages as Arm servers (SBSA).
        requires = ["tegra", ">=r38", ">=ubuntu24.04"]
        return (
            requires,
            "network-repo",
            network_keyring(platform, "sbsa"),
            "NVIDIA's network repository (sbsa)",
        )
    repo_arch = "sbsa" if platform.cuda_arch == "aarch64-sbsa" else "x86_64"
    requires = [f">=ubuntu{NETWORK_FROM[version]}"]
    if version in NETWORK_UNTIL:
        requires.append(f"<=ubuntu{NETWORK_UNTIL[version]}")
    return (
        requires,
        "network-repo",
        network_keyring(platform, repo_arch),
        f"NVIDIA's network repository ({repo_arch})",
    )


def configure(package, platform):
    variants = []
    for version in ("11.4", "12.2", "12.4", "12.6", "12.8", "13.0"):
        requires, source, location, where = source_for(version, platform)
        toolkit = "" if source == "builtin" else f"cuda-toolkit-{version.replace('.', '-')}"
        variants.append(
            package.replace(
                name=f"cuda:{version}",
                requires=[f"==cu{version}", *requires],
                build_args={
                    "CUDA_SOURCE": source,
                    "CUDA_LOCATION": location,
                    "CUDA_PACKAGES": toolkit,
                },
                tier="plan",
                notes=f"CUDA {version} from {where}.",
            )
        )
    return variants
