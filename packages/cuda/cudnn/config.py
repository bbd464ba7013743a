"""cudnn:<X.Y> variants, one per CUDA release: each requires its CUDA and depends on it.

Rows: cuDNN release, the CUDA release it belongs to, and where it comes from on Jetson.
Servers and JetPack 7 install the same release from NVIDIA's network repository (which
cuda:<X.Y> has already added), pinned with an apt version glob.
"""

DOWNLOADS = "https://developer.download.nvidia.com/compute/cudnn"

RELEASES = (
    # cudnn, cuda, JetPack source, JetPack location, Jetson L4T predicate
    ("8.6", "11.4", "builtin", "-", "==r35.*"),
    ("8.9", "12.2", "jetson-repo", "r36.3", "==r36.*"),
    (
        "9.0",
        "12.4",
        "local-repo",
        f"{DOWNLOADS}/9.0.0/local_installers/cudnn-local-tegra-repo-ubuntu2204-9.0.0_1.0-1_arm64.deb",
        "==r36.*",
    ),
    ("9.3", "12.6", "jetson-repo", "r36.4", "==r36.*"),
    (
        "9.8",
        "12.8",
        "local-repo",
        f"{DOWNLOADS}/9.8.0/local_installers/cudnn-local-tegra-repo-ubuntu2404-9.8.0_1.0-1_arm64.deb",
        "==r36.*",
    ),
    ("9.12", "13.0", "network-repo", "-", ">=r38"),
)


def packages(cudnn, cuda):
    if cudnn.startswith("8."):
        return "libcudnn8 libcudnn8-dev"
    major = cuda.split(".")[0]
    return f"libcudnn9-cuda-{major} libcudnn9-dev-cuda-{major}"


def network_keyring(platform):
    release = platform.distro.release.replace(".", "")
    repo_arch = "x86_64" if platform.arch == "x86_64" else "sbsa"
    return f"https://developer.download.nvidia.com/compute/cuda/repos/ubuntu{release}/{repo_arch}/cuda-keyring_1.1-1_all.deb"


WHERE = {
    "builtin": "the l4t-jetpack base image (JetPack 5)",
    "jetson-repo": "JetPack's apt repository",
    "local-repo": "NVIDIA's Jetson local installer",
    "network-repo": "NVIDIA's network repository",
}


def configure(package, platform):
    variants = []
    for cudnn, cuda, source, location, l4t in RELEASES:
        pin = ""
        if platform.is_jetson or source == "builtin":
            requires = ["tegra", l4t]
        else:
            # Servers: the network repository that cuda:<X.Y> added, pinned to this release.
            requires, source = [">=ubuntu22.04"], "network-repo"
        if source == "network-repo":
            location, pin = network_keyring(platform), f"{cudnn}.*"
        variants.append(
            package.replace(
                name=f"cudnn:{cudnn}",
                depends=[f"cuda:{cuda}"],
                requires=[f"==cu{cuda}", *requires],
                build_args={
                    "CUDNN_SOURCE": source,
                    "CUDNN_LOCATION": location,
                    "CUDNN_PIN": pin,
                    "CUDNN_PACKAGES": "" if source == "builtin" else packages(cudnn, cuda),
                },
                tier="plan",
                notes=f"cuDNN {cudnn} for CUDA {cuda} from {WHERE[source]}.",
            )
        )
    return variants
