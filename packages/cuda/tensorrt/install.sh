#!/usr/bin/env bash
# install.sh SOURCE LOCATION VERSION — install TensorRT from one of NVIDIA's channels (see
# jetforge-nvidia-apt, which the cuda package installs), plus a tarball channel for the
# Jetson releases NVIDIA ships only as tarballs.
set -euxo pipefail
source="$1"
location="$2"
version="$3"
packages="libnvinfer-dev libnvinfer-plugin-dev libnvonnxparsers-dev libnvinfer-bin python3-libnvinfer"

case "${source}" in
  builtin) ;;
  jetson-repo) jetforge-nvidia-apt jetson-repo "${location}" ${packages} ;;
  network-repo)
    jetforge-nvidia-apt network-repo "${location}" \
      --pin 'libnvinfer* libnvonnxparsers* python3-libnvinfer*' "${version}.*" ${packages}
    ;;
  tar)
    curl -fsSL "${location}" | tar -xz -C /usr/local
    mv /usr/local/TensorRT-* /usr/local/tensorrt
    echo /usr/local/tensorrt/lib > /etc/ld.so.conf.d/tensorrt.conf
    ldconfig
    ln -s /usr/local/tensorrt/bin/trtexec /usr/local/bin/trtexec
    tag="cp$(python3 -c 'import sys; print("%d%d" % sys.version_info[:2])')"
    jetforge-pip-install /usr/local/tensorrt/python/tensorrt-*-"${tag}"-*.whl
    exit 0
    ;;
  *) echo "unknown TensorRT source ${source}" >&2; exit 2 ;;
esac

# The apt bindings live in the distro's dist-packages; link them into the chain's venv.
site="$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
for module in /usr/lib/python3*/dist-packages/tensorrt*; do
  if [ -e "${module}" ]; then ln -sf "${module}" "${site}/"; fi
done
