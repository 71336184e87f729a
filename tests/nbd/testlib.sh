# What the tier's end-to-end scripts share; sourced after `work` and
# `preload` are set.

# Checks, counted; the script ends with `finish`.
checks=0 failures=0
pass() { checks=$((checks + 1)); echo "ok: $*"; }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAILED: $*"; }
finish() { echo "$checks checks, $failures failed"; [ "$failures" -eq 0 ]; }

# nbdkit runs with libasan preloaded when the plugin is ASan-built.
nbdkit_env=(env)
[ -n "$preload" ] && nbdkit_env=(env "LD_PRELOAD=$preload" "ASAN_OPTIONS=detect_leaks=0")

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# verify_job FILE URI SIZE OFFSET...: a fio job of 4k random writes with
# verify data on the NBD export, one section per offset.
verify_job() {
  local file=$1 uri=$2 size=$3 section=0 offset; shift 3
  {
    printf '[global]\nioengine=nbd\nuri=%s\nsize=%s\nbs=4k\niodepth=16\n' "$uri" "$size"
    printf 'verify=crc32c\nverify_fatal=1\n'
    for offset in "$@"; do
      printf '[%s-%d]\nrw=randwrite\noffset=%s\n' "$(basename "$file" .fio)" "$section" "$offset"
      section=$((section + 1))
    done
  } >"$file"
}

# run_fio JOB OUT [FLAGS...]: runs the job; true if fio saw no error and
# no verify failure. fio keeps its verify state in the working directory.
run_fio() {
  local job=$1 out=$2; shift 2
  fio --output="$out" "$@" "$job" >/dev/null 2>&1 || true
  grep -q "err= 0" "$out" && ! grep -qE "verify:|err= *[1-9]" "$out"
}
