#!/bin/sh
# Build each libFuzzer target (tests/fuzz/fuzz_*.c) with clang, with
# AddressSanitizer and UBSan, and run it FUZZ_SECONDS (default 12) from its
# seed corpus (tests/fuzz/corpus/NAME). A crash, leak or sanitizer report
# fails. Called by `make fuzz` from the build directory (config.h is there);
# exits 77 when clang is missing.
set -e
srcdir=${MESHLOG_SRCDIR:-.}
secs=${FUZZ_SECONDS:-12}
out=fuzz-build
command -v clang >/dev/null 2>&1 || { echo "fuzz: no clang: skipped"; exit 77; }
mkdir -p "$out"
cflags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
-include config.h -I$srcdir -I. -isystem /usr/include/bsd -DLIBBSD_OVERLAY
$(pkg-config --cflags jansson libevent)"
libs="$(pkg-config --libs jansson libevent) -lbsd"
common="$srcdir/collector/xmalloc.c $srcdir/collector/log.c
$srcdir/runtime/clock.c"
for t in hello split wire record; do
	# The splitter knows a bar's redraw sequences by the escaper's list.
	extra=
	[ "$t" = split ] && extra="$srcdir/collector/visible.c"
	# shellcheck disable=SC2086
	clang $cflags -o "$out/fuzz_$t" "$srcdir/tests/fuzz/fuzz_$t.c" \
	    "$srcdir/collector/$t.c" $extra $common $srcdir/runtime/jw.c $libs
done
# Control requests and relay links go through the whole collector: every
# module but main.c and meshlogctl's own, and the runtime library.
whole=$(ls "$srcdir"/collector/*.c | grep -v -e '/main\.c$' \
    -e '/meshlogctl\.c$' -e '/logs\.c$' -e '/logquery\.c$' \
    -e '/logsplit\.c$' -e '/logfiles\.c$' -e '/logruns\.c$' \
    -e '/logmap\.c$')
wlibs="$(pkg-config --libs jansson libevent libsodium libzstd) -lbsd"
for t in control link; do
	# shellcheck disable=SC2086
	clang $cflags $(pkg-config --cflags libsodium libzstd) \
	    -DPKGLIBDIR=\"/nonexistent\" \
	    -o "$out/fuzz_$t" "$srcdir/tests/fuzz/fuzz_$t.c" $whole \
	    $srcdir/runtime/*.c $wlibs
done
for t in hello split wire record control link; do
	# Findings go to a scratch copy; the seeds in the tree stay as they are.
	rm -rf "$out/corpus-$t"
	cp -r "$srcdir/tests/fuzz/corpus/$t" "$out/corpus-$t"
	echo "fuzz_$t: ${secs} s"
	"$out/fuzz_$t" -max_total_time="$secs" -max_len=8192 \
	    -artifact_prefix="$out/crash-$t-" -print_final_stats=1 \
	    "$out/corpus-$t" 2>"$out/fuzz_$t.log" ||
	    { tail -40 "$out/fuzz_$t.log"; echo "fuzz_$t: FAILED"; exit 1; }
	grep -E "stat::number_of_executed_units|stat::peak_rss_mb" \
	    "$out/fuzz_$t.log" | sed "s/^/  /"
done
echo "fuzz: every target ran clean"
