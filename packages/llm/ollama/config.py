"""ollama: the release tarballs for this platform (plus the JetPack runtime on Jetson)."""


def configure(package, platform):
    if platform.arch == "x86_64":
        tarballs = ["ollama-linux-amd64.tgz"]
    else:
        tarballs = ["ollama-linux-arm64.tgz"]
        if platform.is_jetson and platform.l4t_version is not None:
            major = platform.l4t_version.major
            # JetPack 5 and 6 need Ollama's JetPack runtime; JetPack 7 uses the SBSA one.
            if major in (35, 36):
                tarballs.append(f"ollama-linux-arm64-jetpack{major - 30}.tgz")
    return package.replace(
        build_args={**dict(package.build_args), "OLLAMA_TARBALLS": " ".join(tarballs)}
    )
