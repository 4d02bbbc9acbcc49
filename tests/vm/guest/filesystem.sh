#!/bin/bash
# A filesystem as a second real user of the device: mkfs.ext4 on
# /dev/nbd0, files written and checksummed, read back after the page cache
# is dropped and again after a remount, fstrim (the filesystem's own
# discards), and `fsck -f -n` clean.
. /mnt/repo/tests/vm/guest/lib.sh

FS=/mnt/fs
SUMS=$RUNDIR/sha256sums
mkdir -p $FS

start_nbdkit 256M require || { fail "nbdkit did not start"; exit 1; }
attach 2 || { fail "nbd-client -C 2"; exit 1; }
wait_size

t0=$(now)
mkfs.ext4 -q -F -L vramtest $NBD
check $? "mkfs.ext4"
mount -t ext4 $NBD $FS
check $? "mount" || { finish; exit 1; }

# Files of many sizes (small ones share blocks with metadata; large ones
# span many requests), a copy of a source tree, and a deep directory.
mkdir -p $FS/data $FS/deep/a/b/c/d/e/f/g/h
for i in $(seq 1 24); do
  head -c $((RANDOM * i + i)) /dev/urandom >$FS/data/small-$i
done
for n in 1 4 16; do
  head -c $((n << 20)) /dev/urandom >$FS/data/big-${n}M
done
cp -a /mnt/repo/plugin $FS/plugin-src
check $? "copy of the plugin's source tree"
echo "bottom" >$FS/deep/a/b/c/d/e/f/g/h/file
(cd $FS && find . -type f ! -path './lost+found/*' -print0 | sort -z | xargs -0 sha256sum) >$SUMS
figure files "$(wc -l <$SUMS)"
figure data_kb "$(du -sk $FS | cut -f1)"
sync
check $? "sync"

# Read back from the device, not from the page cache.
echo 3 >/proc/sys/vm/drop_caches
(cd $FS && sha256sum --quiet -c $SUMS)
check $? "every file reads back with its checksum after dropping caches"

# Delete some files and let the filesystem discard their blocks.
rm -f $FS/data/big-16M $FS/data/small-1*
grep -v -e 'data/big-16M' -e 'data/small-1' $SUMS >$SUMS.kept
trimmed=$(fstrim -v $FS 2>&1)
check $? "fstrim: $trimmed"

umount $FS
check $? "umount"
fsck.ext4 -f -n $NBD
check $? "fsck.ext4 -f -n reports a clean filesystem"

mount -t ext4 -o ro $NBD $FS
check $? "mount again (read-only)"
(cd $FS && sha256sum --quiet -c $SUMS.kept)
check $? "every remaining file reads back with its checksum after a remount"
umount $FS
check $? "umount"
figure fs_seconds "$(elapsed_since "$t0")"

detach;      check $? "nbd-client -d"
stop_nbdkit; check $? "nbdkit exits cleanly"
finish
