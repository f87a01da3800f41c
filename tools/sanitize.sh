#!/usr/bin/env bash
# Build lmmfit with AddressSanitizer + UndefinedBehaviorSanitizer into a
# private library and run the whole test suite against it.  Any sanitizer
# report ("runtime error" from UBSan, "ERROR: AddressSanitizer" from ASan), a
# crash of R or a failed test fails the run.
#
#   tools/sanitize.sh            (or: make sanitize)
#
# R itself is not instrumented: the ASan runtime is preloaded into R
# (LD_PRELOAD) and leak detection is off (R frees its heap lazily by design;
# leaks are make valgrind's job).  Environment: SANITIZE_KEEP=1 keeps the
# work directory; LMMFIT_TEST_LEVEL and LMMFIT_FUZZ_N are passed to the tests.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
start=$(date +%s)
cc=$(R CMD config CC 2>/dev/null | awk '{print $1}')
cc=${cc:-gcc}
asan=$($cc -print-file-name=libasan.so)
if [ ! -e "$asan" ] || [ "$asan" = libasan.so ]; then
    echo "sanitize: the ASan runtime (libasan.so) was not found for $cc; install gcc" >&2
    exit 2
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/lmmfit-sanitize.XXXXXX")
[ "${SANITIZE_KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
flags="-g -O1 -fsanitize=address,undefined -fno-omit-frame-pointer"
cat >"$work/Makevars" <<MK
CFLAGS = $flags -Wall -Wextra
LDFLAGS = -fsanitize=address,undefined
MK

echo "== sanitize: installing with $flags"
if ! R_MAKEVARS_USER="$work/Makevars" bash "$top/tools/dev-install.sh" "$work/lib"; then
    echo "sanitize: the instrumented build failed" >&2
    exit 1
fi

log="$work/tests.log"
echo "== sanitize: running tests/testthat under ASan+UBSan"
(
    cd "$top/tests/testthat" &&
    LD_PRELOAD="$asan" \
    ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:halt_on_error=1:allocator_may_return_null=1" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    R_LIBS="$work/lib" Rscript --vanilla -e '
        r <- testthat::test_dir(".", package = "lmmfit", load_package = "installed",
                                reporter = "summary", stop_on_failure = FALSE)
        d <- as.data.frame(r)
        cat(sprintf("\nsanitize-tests: %d passed, %d failed, %d errors\n",
                    sum(d$passed), sum(d$failed), sum(d$error)))
        quit(status = if (sum(d$failed) + sum(d$error) > 0) 3 else 0)'
) >"$log" 2>&1
rc=$?
tail -n 25 "$log"
nrep=$(grep -cE 'runtime error|ERROR: AddressSanitizer|AddressSanitizer:|LeakSanitizer' "$log")
echo "== sanitize: R exit status $rc, $nrep sanitizer report line(s), $(( $(date +%s) - start ))s"
if [ "$nrep" -gt 0 ]; then
    echo "== sanitize: reports" >&2
    grep -nE -A 25 'runtime error|ERROR: AddressSanitizer' "$log" | head -n 200 >&2
    exit 1
fi
if [ "$rc" -ne 0 ]; then
    echo "sanitize: the test run failed (exit $rc); see above" >&2
    exit 1
fi
echo "sanitize: clean"
