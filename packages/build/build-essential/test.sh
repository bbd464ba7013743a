#!/usr/bin/env bash
# Compile and run a tiny C program and a tiny C++ program.
set -euo pipefail
work=$(mktemp -d)
printf '#include <stdio.h>\nint main(void){puts("c ok");return 0;}\n' > "$work/a.c"
printf '#include <iostream>\nint main(){std::cout<<"c++ ok"<<std::endl;}\n' > "$work/b.cpp"
gcc -o "$work/a" "$work/a.c" && "$work/a"
g++ -o "$work/b" "$work/b.cpp" && "$work/b"
make --version > "$work/make.txt" && head -n 1 "$work/make.txt"
git --version
