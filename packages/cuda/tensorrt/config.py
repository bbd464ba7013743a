"""tensorrt:<X.Y> variants, one per CUDA release (and its cuDNN), following cuda.

JetPack gets TensorRT from its base image (5), its apt repository or NVIDIA's Jetson
tarballs (6); servers and JetPack 7 from NVIDIA's network repository, pinned to the
release with an apt version glob. Releases NVIDIA ships for Jetson only say so.
"""

TARS = "https://developer.nvidia.com/downloads/compute/machine-learning/tensorrt"

RELEASES = (
    # tensorrt, cuda, cudnn, Jetson source, Jetson location, Jetson L4T, also on servers
    ("8.5", "11.4", "8.6", "builtin", "-", "==r35.*", False),
    ("8.6", "12.2", "8.9", "jetson-repo", "r36.3", "==r36.*", False),
    (
        "10.0",
        "12.4",
        "9.0",
        "tar",
        f"{TARS}/10.0.1/tars/TensorRT-10.0.1.6.l4t.aarch64-gnu.cuda-12.4.tar.gz",
        "==r36.*",
        False,
    ),
    ("10.3", "12.6", "9.3", "jetson-repo", "r36.4", "==r36.*", True),
    (
        "10.7",
        "12.8",
        "9.8",
        "tar",
        f"{TARS}/10.7.0/tars/TensorRT-10.7.0.23.l4t.aarch64-gnu.cuda-12.6.tar.gz",
        "==r36.*",
        True,
    ),
    ("10.13", "13.0", "9.12", "network-repo", "-", ">=r38", True),
)

WHERE = {
    "builtin": "the l4t-jetpack base image (JetPack 5)",
    "jetson-repo": "JetPack's apt repository",
    "tar": "NVIDIA's Jetson tarball",
    "network-repo": "NVIDIA's network repository",
}


def network_keyring(platform):
    release = platform.distro.release.replace(".", "")
    repo_arch = "x86_64" if platform.arch == "x86_64" else "sbsa"
    return f"https://developer.download.nvidia.com/compute/cuda/repos/ubuntu{release}/{repo_arch}/cuda-keyring_1.1-1_all.deb"


def configure(package, platform):
    variants = []
    for trt, cuda, cudnn, source, location, l4t, servers in RELEASES:
        if platform.is_jetson or not servers:
            requires = ["tegra", l4t]
        else:
            requires, source = [">=ubuntu22.04"], "network-repo"
        if source == "network-repo":
            location = network_keyring(platform)
        variants.append(
            package.replace(
                name=f"tensorrt:{trt}",
                depends=[f"cuda:{cuda}", f"cudnn:{cudnn}", "python"],
                requires=[f"==cu{cuda}", *requires],
                build_args={
                    "TENSORRT_VERSION": trt,
                    "TENSORRT_SOURCE": source,
                    "TENSORRT_LOCATION": location,
                },
                tier="plan",
                notes=f"TensorRT {trt} for CUDA {cuda} from {WHERE[source]}.",
            )
        )
    return variants
