#!/bin/bash
# zram's figures for the compression corpus (bench/corpus/make_corpus.py),
# with the algorithms the host's kernel may lack (zstd): the corpus written
# to a fresh zram device per algorithm, then its mm_stat.  Not a test:
# docs/benchmarks.md, "Compression".  Boot with the modules it needs:
#
#   VRAM_VM_EXTRA_MODULES="zram lz4 zstd" /usr/bin/python3 tests/vm/harness.py \
#     zram_corpus.sh RAM=1536M TIMEOUT=900
#
# VMTEST_CORPUS  the corpus, in the build directory (corpus.pages)
# VMTEST_ALGOS   zram's algorithms to try (lz4 zstd lzo-rle)
. /mnt/repo/tests/vm/guest/lib.sh

corpus=$BUILD/${VMTEST_CORPUS:-corpus.pages}
[[ -r $corpus ]] || { fail "no corpus at $corpus (bench/corpus/make_corpus.py)"; exit 1; }
for algo in ${VMTEST_ALGOS:-lz4 zstd lzo-rle}; do
  line=$(bash /mnt/repo/bench/corpus/zram_ratio.sh "$corpus" "$algo" all 2>&1)
  check $? "zram with $algo: $line"
  echo "zram-corpus: $line"
  figure "zram_${algo//-/_}_ratio_memory" "$(sed -n 's/.*"ratio_memory": \([0-9.]*\).*/\1/p' <<<"$line")"
done
finish "zram figures for $corpus"
