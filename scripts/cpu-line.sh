#!/usr/bin/env bash
# One line naming this machine's CPU, for the top of every speed table: vendor, lscpu's family
# and model, its name, the instruction sets themap's kernels use, and the CPUs online.
set -euo pipefail
field() { lscpu | sed -n "s/^$1:[[:space:]]*//p" | head -1; }
flags=""
for flag in avx2 fma avx512f avx512_bf16 avx512_fp16 avx512_vnni amx_bf16; do
  grep -qw "$flag" /proc/cpuinfo && flags="$flags${flags:+ }$flag"
done
echo "$(field 'Model name') ($(field 'Vendor ID'), family $(field 'CPU family'), model $(field 'Model'); ${flags:-no AVX2}; $(nproc) CPUs)"
