#!/bin/bash
# A bit flips in a swapped-out page, in (fake) VRAM: behind the integrity
# filter the kernel gets an I/O error for that page and the process that
# touches it dies with SIGBUS; without the filter (the negative control)
# the process reads the flipped bit and nobody notices.
#
# swapvictim.py fills its memory, pages it all out (MADV_PAGEOUT, and
# cgroup reclaim for the swap-cache copies), finds one page's swap slot in
# /proc/self/pagemap, flips one bit of that slot in the ivshmem BAR (at
# the allocation's file offset from the test driver's map file), lets a
# child touch the page, then reads every other page back.  Twice:
#
#   single     vm.page-cluster 0: a swap-in reads one page, no readahead;
#              the bad page is lost and every other page reads back right
#   readahead  the kernel's default readahead (page-cluster 3): the bad
#              page is read in one request with its neighbours, and the
#              kernel fails them all; none may read back wrong, and every
#              page lost must be one the kernel reported
#
# VMTEST_FILTER            1 (default): nbdkit --filter=integrity; 0: none
#                          (the negative control)
# VMTEST_VICTIM_SIZE       the first victim's memory (64M)
# VMTEST_PAGE_CLUSTER      vm.page-cluster for the first victim (0)
# VMTEST_RA_VICTIM_SIZE    the second victim's memory (16M)
# VMTEST_RA_PAGE_CLUSTER   vm.page-cluster for the second victim (3)
# VMTEST_SEED              which page, byte and bit (1; the second victim
#                          uses SEED+1)
# VMTEST_RECLAIM           1 (default): the victims free their pages'
#                          swap-cache copies with memory.reclaim; 0: only
#                          MADV_PAGEOUT (the copies stay: the check that
#                          none is cached fails, and the flip goes unseen)
. /mnt/repo/tests/vm/guest/lib.sh

filter=${VMTEST_FILTER:-1}
victim_size=${VMTEST_VICTIM_SIZE:-64M}
seed=${VMTEST_SEED:-1}
page_cluster=${VMTEST_PAGE_CLUSTER:-0}
ra_page_cluster=${VMTEST_RA_PAGE_CLUSTER:-3}
ra_victim_size=${VMTEST_RA_VICTIM_SIZE:-16M}
page_cluster_default=$(cat /proc/sys/vm/page-cluster)
FILTER_SO=$BUILD/filters/integrity/nbdkit-integrity-filter.so
VICTIM=/mnt/repo/tests/vm/guest/swapvictim.py
CG=/sys/fs/cgroup/victim

opts=()
if [[ $filter == 1 ]]; then
  opts+=(--filter="$FILTER_SO")
fi
start_nbdkit 256M require "${opts[@]}" || { fail "nbdkit did not start"; exit 1; }
if [[ $filter == 1 ]]; then
  grep -q "integrity: checking export" $NBDKIT_LOG
  check $? "nbdkit serves through the integrity filter"
else
  ! grep -q "integrity:" $NBDKIT_LOG
  check $? "nbdkit serves without the integrity filter (negative control)"
fi
base=$(alloc_offset) || { fail "no allocation in the test driver's map file"; exit 1; }
figure alloc_file_offset "$base"
bar=$(ivshmem_dev)/resource2

attach 2 -swap || { fail "nbd-client -C 2 -swap"; exit 1; }
wait_size
mkswap $NBD >/dev/null || { fail "mkswap"; exit 1; }
swapon -p 100 $NBD || { fail "swapon"; exit 1; }
nswaps=$(($(wc -l </proc/swaps) - 1))
((nswaps == 1)); check $? "/dev/nbd0 is the only swap device ($nswaps)"
# zswap would keep swapped pages in compressed RAM, away from the device.
if [[ -w /sys/module/zswap/parameters/enabled ]]; then
  echo N >/sys/module/zswap/parameters/enabled
fi
[[ $(cat /sys/module/zswap/parameters/enabled 2>/dev/null || echo N) == N ]]
check $? "zswap is off"

# The victim's own memory cgroup: memory.reclaim frees the swap-cache
# copies of its pages once they are written out.
mkdir -p /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup 2>/dev/null
echo +memory >/sys/fs/cgroup/cgroup.subtree_control
mkdir -p $CG
cgroup=(--cgroup "$CG")
[[ ${VMTEST_RECLAIM:-1} == 1 ]] || cgroup=()

# victim NAME PAGE_CLUSTER SIZE SEED: one victim, with vm.page-cluster set
# to PAGE_CLUSTER while it runs; its checks and figures are prefixed NAME.
# shellcheck disable=SC2154  # v_*: set by the eval of the victim's results
victim() {
  local name=$1 pc=$2 size=$3 seed=$4
  local json=$RUNDIR/victim-$name.json k t0 dmesg_before kernel
  echo "$pc" >/proc/sys/vm/page-cluster
  log "$name: victim of $size, seed $seed; vm.page-cluster = $(cat /proc/sys/vm/page-cluster)," \
      "vma readahead $(cat /sys/kernel/mm/swap/vma_ra_enabled)"
  dmesg_before=$(dmesg | wc -l)
  t0=$(now)
  $PY $VICTIM --size "$size" --seed "$seed" --bar "$bar" --base "$base" \
    --device $NBD "${cgroup[@]}" --json "$json"
  check $? "$name: the victim program ran to the end"
  figure "${name}_victim_seconds" "$(elapsed_since "$t0")"
  [[ -s $json ]] || { fail "$name: no victim results"; return 1; }
  cp "$json" $OUT/

  # The victim's results as shell variables (v_NAME).
  eval "$($PY -c '
import json, shlex, sys
for k, v in json.load(open(sys.argv[1])).items():
    if isinstance(v, bool):
        v = int(v)
    if isinstance(v, (int, float, str)):
        print(f"v_{k}={shlex.quote(str(v))}")
' "$json")"
  for k in pages pageout_rounds cgroup_reclaims pageout_seconds pages_swap_cached \
           swap_offset export_offset bar_offset \
           other_pages_right other_pages_wrong other_pages_unreadable verify_seconds; do
    figure "${name}_$k" "$(eval echo "\${v_$k:-null}")"
  done
  figure "${name}_child" "\"$v_child\""
  figure "${name}_parent_read_bad_page" "\"$v_parent_read_bad_page\""

  ((v_pages_swapped == v_pages && v_pages_swap_cached == 0))
  check $? "$name: all $v_pages pages in swap and none in the swap cache ($v_pages_swapped swapped, $v_pages_swap_cached cached)"
  ((v_swap_type == 0 && v_swap_header_ok == 1 && v_device_holds_page == 1))
  check $? "$name: page $v_page is swap slot $v_swap_offset: the device's byte $v_export_offset holds it (header at 0)"
  ((v_old_byte != v_new_byte)); check $? "$name: one bit flipped in the BAR at byte $v_bar_offset"

  kernel=$(dmesg | tail -n +"$((dmesg_before + 1))")
  read_errors=$(grep -c "Read-error on swap-device" <<<"$kernel")
  io_errors=$(grep -c "I/O error, dev nbd0" <<<"$kernel")
  figure "${name}_kernel_read_error_lines" "$read_errors"
  figure "${name}_kernel_io_error_lines" "$io_errors"
  mismatches=$(grep -c "integrity: data corruption in export \"\" at offset $v_export_offset " $NBDKIT_LOG)
  figure "${name}_filter_corruption_lines" "$mismatches"
  if [[ $filter == 1 ]]; then
    [[ $v_child == "signal SIGBUS" ]]
    check $? "$name: the child touching the bad page died of SIGBUS ($v_child)"
    [[ $v_parent_read_bad_page == "Input/output error" ]]
    check $? "$name: the parent's read of the bad page fails with EIO ($v_parent_read_bad_page)"
    # (kernel sectors are 512 bytes: swap slot N is sector 8N)
    grep -q "Read-error on swap-device ([0-9]*:[0-9]*:$((v_swap_offset * 8)))" <<<"$kernel"
    check $? "$name: the kernel reported a swap read error at sector $((v_swap_offset * 8)) (slot $v_swap_offset; $read_errors such lines)"
    ((mismatches == 1))
    check $? "$name: the filter logged the corruption at export offset $v_export_offset once ($mismatches lines)"
    # With readahead the bad block's request also carried its neighbours:
    # the kernel fails every page of it.  Every page the victim cannot
    # read back must be one of those, and none may read back wrong.
    ((v_other_pages_unreadable == read_errors - 1))
    check $? "$name: every other page the victim cannot read is one the kernel reported ($v_other_pages_unreadable unreadable, $read_errors swap read errors)"
  else
    [[ $v_child == "exit 3" ]]
    check $? "$name: without the filter the child reads the page and no error ($v_child)"
    $PY -c '
import json, sys
v = json.load(open(sys.argv[1]))
sys.exit(v["child_saw"] != {"diffs": [[v["byte"], 1 << v["bit"]]], "ndiffs": 1})
' "$json"
    check $? "$name: what it read differs from what it wrote by the flipped bit only (byte $v_byte, bit $v_bit)"
    [[ $v_parent_read_bad_page == wrong ]]
    check $? "$name: the parent reads the wrong page too ($v_parent_read_bad_page)"
    ((read_errors == 0 && io_errors == 0)); check $? "$name: the kernel reported no read error"
    ((mismatches == 0)); check $? "$name: no integrity filter, no report"
  fi
  ((v_other_pages_wrong == 0)); check $? "$name: no other page read back wrong ($v_other_pages_wrong)"
  if ((pc == 0)); then
    ((v_other_pages_unreadable == 0 && v_other_pages_right == v_pages - 1))
    check $? "$name: every other page read back right ($v_other_pages_right of $((v_pages - 1)), $v_other_pages_unreadable unreadable)"
  fi
}

# 1: no readahead, so the bad page is read alone: it, and only it, is lost.
victim single "$page_cluster" "$victim_size" "$seed"
# 2: the kernel's default readahead: the bad page is read together with
# its neighbours in one request, which fails as a whole.
victim readahead "$ra_page_cluster" "$ra_victim_size" "$((seed + 1))"
echo "$page_cluster_default" >/proc/sys/vm/page-cluster

total=$(grep -c "integrity: data corruption" $NBDKIT_LOG)
figure filter_corruption_lines "$total"
if [[ $filter == 1 ]]; then
  ((total == 2)); check $? "the filter logged two corruptions in all ($total lines)"
fi

# The victim has exited: its swap slots, the bad one included, are free.
t0=$(now)
swapoff $NBD; check $? "swapoff"
figure swapoff_seconds "$(elapsed_since "$t0")"
detach; check $? "nbd-client -d"
stop_nbdkit; check $? "nbdkit exits cleanly"
finish
