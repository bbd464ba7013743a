#!/usr/bin/env bash
# nvcc is the expected release and compiles a kernel; the kernel runs when a GPU is visible.
set -euo pipefail
nvcc --version | tee /tmp/nvcc.txt
grep -q "release ${CUDA_VERSION}" /tmp/nvcc.txt || {
  echo "expected CUDA ${CUDA_VERSION}" >&2
  exit 1
}
work=$(mktemp -d)
cat > "$work/add.cu" <<'CU'
#include <cstdio>
__global__ void add(const float *a, const float *b, float *c, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) c[i] = a[i] + b[i];
}
int main() {
  const int n = 256;
  float *a, *b, *c;
  if (cudaMallocManaged(&a, n * sizeof(float)) != cudaSuccess) { puts("no device"); return 1; }
  cudaMallocManaged(&b, n * sizeof(float));
  cudaMallocManaged(&c, n * sizeof(float));
  for (int i = 0; i < n; i++) { a[i] = i; b[i] = 2 * i; }
  add<<<1, n>>>(a, b, c, n);
  cudaDeviceSynchronize();
  for (int i = 0; i < n; i++) if (c[i] != 3 * i) { printf("wrong at %d\n", i); return 1; }
  puts("cuda kernel ok");
  return 0;
}
CU
arch="${CUDAARCHS%%;*}"
nvcc -arch="sm_${arch}" -o "$work/add" "$work/add.cu"
if ls /dev/nvidia[0-9]* /dev/nvhost-ctrl-gpu >/dev/null 2>&1; then
  "$work/add"
else
  echo "SKIP gpu check: no NVIDIA GPU device is visible in this container (compiled only)"
fi
echo "cuda ok"
