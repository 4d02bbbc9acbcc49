#!/usr/bin/env bash
# The original project's methodology, for a kernel block device such as
# /dev/nbd0 (a user's machine, or the VM harness): ioping sporadic 4 KiB
# reads, fio libaio 4 KiB random read/write with 16 jobs and with 1, and
# dd O_DIRECT sequential write and read.  It WRITES to the device: every
# byte on it is lost.  Prints a table and writes JSON lines to OUTDIR.
#
#   bench/kernel_device.sh --destroy-data /dev/nbdN [OUTDIR]
#
# Env: RUNTIME (seconds per fio run, default 10), MB (dd size in MiB,
# default 1024, capped at the device size).
set -euo pipefail
[[ ${1:-} == --destroy-data ]] || { echo "usage: $0 --destroy-data /dev/DEVICE [OUTDIR]" >&2; exit 2; }
dev=${2:?usage: $0 --destroy-data /dev/DEVICE [OUTDIR]}
out=${3:-$(mktemp -d)}
[[ -b $dev ]] || { echo "$dev is not a block device" >&2; exit 1; }
if grep -q "^$dev " /proc/swaps || grep -q "^$dev " /proc/mounts; then
  echo "$dev is in use (swap or mounted): refusing" >&2; exit 1
fi
for tool in ioping fio dd; do
  command -v $tool >/dev/null || { echo "missing $tool (Debian: apt-get install $tool)" >&2; exit 1; }
done
mkdir -p "$out"
RUNTIME=${RUNTIME:-10}
size_mb=$(( $(blockdev --getsize64 "$dev") / 1048576 ))
MB=${MB:-1024}; (( MB > size_mb )) && MB=$size_mb
results=$out/kernel-device.jsonl
: >"$results"

# Fill first, so reads hit data everywhere.
dd if=/dev/zero of="$dev" bs=1M count="$MB" oflag=direct status=none

# ioping: 100 requests of 4 KiB, 10 ms apart (ioping's default is 1 s).
# -B prints one raw line: count total iops bps min avg max mdev ... (ns).
ioping -B -c 100 -i 10ms -s 4k -D "$dev" >"$out/ioping.txt"
python3 - "$out/ioping.txt" "$results" <<'PY'
import json, sys
f = [l.split() for l in open(sys.argv[1]) if l.strip() and l.split()[0].isdigit()]
if f:
    last = f[-1]
    row = {"test": "ioping-4k-sporadic-read", "min_us": int(last[4]) / 1000,
           "avg_us": int(last[5]) / 1000, "max_us": int(last[6]) / 1000}
    open(sys.argv[2], "a").write(json.dumps(row) + "\n")
PY

for jobs in 16 1; do
  fio --name=randrw --filename="$dev" --ioengine=libaio --direct=1 --rw=randrw --rwmixread=50 \
      --bs=4k --iodepth=1 --numjobs="$jobs" --size="${MB}M" --time_based --runtime="$RUNTIME" \
      --group_reporting --output-format=json >"$out/fio-$jobs.json"
  python3 - "$out/fio-$jobs.json" "$results" "$jobs" <<'PY'
import json, sys
t = open(sys.argv[1]).read()
j = json.loads(t[t.index("{"):])["jobs"][0]
iops = j["read"]["iops"] + j["write"]["iops"]
bw = (j["read"]["bw_bytes"] + j["write"]["bw_bytes"]) / 1e6
row = {"test": f"fio-4k-randrw-numjobs{sys.argv[3]}", "iops": round(iops), "mb_per_s": round(bw, 1),
       "read_p50_us": j["read"]["clat_ns"]["percentile"]["50.000000"] / 1000}
open(sys.argv[2], "a").write(json.dumps(row) + "\n")
PY
done

dd_rate() { # dd's last line, e.g. "1073741824 bytes (1.1 GB, 1.0 GiB) copied, 0.5 s, 2.1 GB/s"
  sed -n 's/.*copied, \([0-9.]*\) s.*/\1/p' | tail -1
}
wsec=$(dd if=/dev/zero of="$dev" bs=1M count="$MB" oflag=direct 2>&1 | dd_rate)
rsec=$(dd if="$dev" of=/dev/null bs=1M count="$MB" iflag=direct 2>&1 | dd_rate)
python3 - "$results" "$MB" "$wsec" "$rsec" <<'PY'
import json, sys
mb, w, r = int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
open(sys.argv[1], "a").write(json.dumps({"test": "dd-1m-direct", "write_gb_per_s": round(mb * 1048576 / w / 1e9, 2),
                                         "read_gb_per_s": round(mb * 1048576 / r / 1e9, 2)}) + "\n")
PY
cat "$results"
