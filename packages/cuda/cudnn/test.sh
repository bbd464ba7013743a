#!/usr/bin/env bash
# The cuDNN headers and library are present, agree on the version, and link; the program
# runs (cudnnCreate needs a device) when a GPU is visible.
set -euo pipefail
header=$(find /usr/include /usr/local/cuda/include -name 'cudnn_version*.h' 2>/dev/null | head -n 1)
test -n "${header}" || { echo "no cudnn_version.h" >&2; exit 1; }
major=$(awk '/define CUDNN_MAJOR/ {print $3}' "${header}")
minor=$(awk '/define CUDNN_MINOR/ {print $3}' "${header}")
echo "cuDNN headers ${major}.${minor} (${header})"
work=$(mktemp -d)
cat > "$work/version.cpp" <<'CPP'
#include <cstdio>
#include <cudnn.h>
int main(int argc, char **argv) {
  size_t version = cudnnGetVersion();
  printf("cuDNN library %zu\n", version);
  if (version / (CUDNN_MAJOR >= 9 ? 10000 : 1000) != CUDNN_MAJOR) return 1;
  if (argc > 1) {
    cudnnHandle_t handle;
    if (cudnnCreate(&handle) != CUDNN_STATUS_SUCCESS) { puts("cudnnCreate failed"); return 1; }
    cudnnDestroy(handle);
    puts("cudnn handle ok");
  }
  return 0;
}
CPP
g++ -o "$work/version" "$work/version.cpp" -I"$(dirname "${header}")" -I/usr/local/cuda/include \
  -L/usr/local/cuda/lib64 -lcudnn
"$work/version"
if ls /dev/nvidia[0-9]* /dev/nvhost-ctrl-gpu >/dev/null 2>&1; then
  "$work/version" --device
else
  echo "SKIP gpu check: no NVIDIA GPU device is visible in this container"
fi
echo "cudnn ok"
