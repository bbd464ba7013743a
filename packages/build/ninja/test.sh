#!/usr/bin/env bash
# Build a one-file C program with a hand-written build.ninja, twice: the second run has
# nothing to do.
set -euo pipefail
work=$(mktemp -d)
cd "$work"
printf '#include <stdio.h>\nint main(void){puts("ninja ok");return 0;}\n' > hello.c
cat > build.ninja <<'NINJA'
rule cc
  command = cc -o $out $in
build hello: cc hello.c
NINJA
ninja --version
ninja > /dev/null
./hello
ninja | grep -q "no work to do"
