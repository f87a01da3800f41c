#!/usr/bin/env bash
# Run a trimmed test suite under valgrind (memcheck) against a -g build of
# lmmfit in a private library.  Fails on
#   * any invalid read/write/free or use of uninitialised values (anywhere),
#   * any "definitely lost" block allocated from lmmfit's code,
#   * a crash of R or a failed test.
#
#   tools/valgrind.sh                 (or: make valgrind)
#   VALGRIND_TESTS="test-wb.R test-ranef.R" tools/valgrind.sh
#   VALGRIND_TESTS=all tools/valgrind.sh      (the whole suite: about an hour)
#
# The whole suite takes ~50x longer under valgrind than without, so by
# default it runs the tests that call every C entry point on small data
# (test-entry-points.R, test-interrupts.R, a short fuzz run) and a few fast
# files; LMMFIT_TEST_LEVEL=valgrind lets tests trim their slowest parts (see
# tests/testthat/helper-level.R).  VALGRIND_KEEP=1 keeps the logs.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
start=$(date +%s)
if ! command -v valgrind >/dev/null 2>&1; then
    echo "valgrind: valgrind is not installed (tools/install-deps.sh installs it)" >&2
    exit 2
fi
tests=${VALGRIND_TESTS:-"test-entry-points.R test-interrupts.R test-fuzz.R test-wb.R test-ranef.R test-bad-input.R test-optimum.R test-stats.R test-resid-crossed.R"}
work=$(mktemp -d "${TMPDIR:-/tmp}/lmmfit-valgrind.XXXXXX")
[ "${VALGRIND_KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
printf 'CFLAGS = -g -O1 -Wall -Wextra\n' >"$work/Makevars"
echo "== valgrind: installing a -g -O1 build"
if ! R_MAKEVARS_USER="$work/Makevars" bash "$top/tools/dev-install.sh" "$work/lib"; then
    echo "valgrind: the build failed" >&2
    exit 1
fi

cat >"$work/run.R" <<'RS'
files <- strsplit(Sys.getenv("VG_TESTS"), "[ ,]+")[[1]]
setwd(Sys.getenv("VG_DIR"))
if (identical(files, "all")) files <- list.files(".", "^test-.*\\.R$")
fails <- 0
for (f in files) {
    t0 <- proc.time()[["elapsed"]]
    r <- as.data.frame(testthat::test_file(f, package = "lmmfit", load_package = "installed",
                                           reporter = "summary"))
    fails <- fails + sum(r$failed) + sum(r$error)
    cat(sprintf("valgrind-tests: %s: %d passed, %d failed, %.0fs\n", f, sum(r$passed),
                sum(r$failed) + sum(r$error), proc.time()[["elapsed"]] - t0))
}
quit(status = if (fails > 0) 3 else 0)
RS

echo "== valgrind: running $tests"
VG_TESTS="$tests" VG_DIR="$top/tests/testthat" LMMFIT_TEST_LEVEL="${LMMFIT_TEST_LEVEL:-valgrind}" \
R_LIBS="$work/lib" R --vanilla --quiet --no-echo \
    -d "valgrind --leak-check=full --errors-for-leak-kinds=none --error-exitcode=99 --num-callers=30 --log-file=$work/vg.%p.log" \
    -f "$work/run.R" >"$work/tests.log" 2>&1
rc=$?
grep -E '^valgrind-tests:|FAIL|Error' "$work/tests.log" | head -n 40
bad=0
for lg in "$work"/vg.*.log; do
    # memory errors anywhere
    nerr=$(grep -cE '== (Invalid (read|write|free)|Mismatched free|Conditional jump|Use of uninitialised|Syscall param .* uninitialised|Source and destination overlap)' "$lg")
    if [ "$nerr" -gt 0 ]; then
        echo "valgrind: $nerr memory error(s) in $lg:" >&2
        grep -E -A 20 '== (Invalid|Mismatched|Conditional|Use of|Syscall|Source and)' "$lg" | head -n 120 >&2
        bad=1
    fi
    # definitely lost blocks whose allocation stack passes through lmmfit
    leaks=$(awk '/are definitely lost in loss record/ {inrec = 1; rec = $0; next}
                 inrec && /^==[0-9]+== *$/ {if (rec ~ /lmmfit\.so|: lmm_[A-Za-z0-9_]+ \(/) print rec "\n"; inrec = 0; next}
                 inrec {rec = rec "\n" $0}' "$lg")
    if [ -n "$leaks" ]; then
        echo "valgrind: definitely lost memory from lmmfit in $lg:" >&2
        echo "$leaks" | head -n 80 >&2
        bad=1
    fi
done
main=$(ls -S "$work"/vg.*.log | head -n 1)
grep -E 'definitely lost|indirectly lost|ERROR SUMMARY' "$main" | sed 's/^==[0-9]*== *//'
echo "== valgrind: R exit status $rc, $(( $(date +%s) - start ))s"
if [ "$rc" -eq 99 ]; then echo "valgrind: memcheck reported errors" >&2; bad=1;
elif [ "$rc" -ne 0 ]; then echo "valgrind: the test run failed (exit $rc)" >&2; tail -n 30 "$work/tests.log" >&2; bad=1; fi
[ "$bad" -eq 0 ] && echo "valgrind: clean"
exit "$bad"
