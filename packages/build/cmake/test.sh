#!/usr/bin/env bash
# Configure and build a one-file CMake project.
set -euo pipefail
work=$(mktemp -d)
cat > "$work/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.16)
project(hello C)
add_executable(hello hello.c)
CMAKE
printf '#include <stdio.h>\nint main(void){puts("cmake ok");return 0;}\n' > "$work/hello.c"
cmake -S "$work" -B "$work/build" > /dev/null
cmake --build "$work/build" > /dev/null
"$work/build/hello"
