#!/usr/bin/env bash
# zram's figures for a corpus of 4 KiB pages (make_corpus.py): the pages
# written to a fresh zram device with ALGO, then its mm_stat, as one JSON
# line.  Needs root and a kernel with zram (here, or in the VM guest).
#
#   bench/corpus/zram_ratio.sh CORPUS ALGO [LABEL] [FROM_PAGE PAGES]
set -euo pipefail
corpus=${1:?usage: zram_ratio.sh CORPUS ALGO [LABEL] [FROM_PAGE PAGES]}
algo=${2:?usage: zram_ratio.sh CORPUS ALGO [LABEL] [FROM_PAGE PAGES]}
label=${3:-} from=${4:-0} pages=${5:-}
[[ -w /sys/class/zram-control/hot_add ]] || modprobe zram num_devices=0 2>/dev/null || true
[[ -w /sys/class/zram-control/hot_add ]] || { echo "zram_ratio.sh: this kernel has no zram" >&2; exit 1; }
id=$(cat /sys/class/zram-control/hot_add)
dev=/dev/zram$id sys=/sys/block/zram$id
trap 'echo 1 >"$sys/reset" 2>/dev/null; echo "$id" >/sys/class/zram-control/hot_remove 2>/dev/null' EXIT
for _ in $(seq 50); do [[ -b $dev ]] && break; sleep 0.1; done
if ! echo "$algo" >"$sys/comp_algorithm" 2>/dev/null; then
  echo "zram_ratio.sh: this kernel's zram has no $algo (it has: $(cat "$sys/comp_algorithm"))" >&2
  exit 1
fi
size=$(stat -c %s "$corpus")
[[ -n $pages ]] || pages=$((size / 4096 - from))
echo $((pages * 4096 + 1048576)) >"$sys/disksize"
dd if="$corpus" of="$dev" bs=4096 skip="$from" count="$pages" oflag=direct status=none
sync
read -r orig compr used _limit _max same _compacted huge _rest <"$sys/mm_stat"
python3 - "$label" "$algo" "$pages" "$orig" "$compr" "$used" "$same" "$huge" <<'PY'
import json, sys
label, algo, pages, orig, compr, used, same, huge = sys.argv[1:]
orig, compr, used = int(orig), int(compr), int(used)
print(json.dumps({"label": label, "zram_algorithm": algo, "pages": int(pages),
                  "same_pages": int(same), "huge_pages": int(huge), "orig_data_size": orig,
                  "compr_data_size": compr, "mem_used_total": used,
                  "ratio_compressed": round(orig / compr, 3) if compr else None,
                  "ratio_memory": round(orig / used, 3) if used else None}))
PY
