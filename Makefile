# lmmfit developer tasks.  `make demo` installs what is missing and runs a
# short demo; `make check` (= `make test`) runs R CMD build + R CMD check --as-cran.

PKG      := lmmfit
VERSION  := $(shell sed -n 's/^Version:[[:space:]]*//p' DESCRIPTION)
TARBALL  := $(PKG)_$(VERSION).tar.gz
R        ?= R
RSCRIPT  ?= Rscript
# Library that `make install` writes to (default: R's first library path).
LIB      ?= $(shell $(RSCRIPT) -e 'cat(.libPaths()[1])')

# No network for the check: skip the CRAN-incoming and time-server look-ups.
CHECK_ENV := _R_CHECK_CRAN_INCOMING_REMOTE_=FALSE _R_CHECK_CRAN_INCOMING_=FALSE \
             _R_CHECK_FUTURE_FILE_TIMESTAMPS_=FALSE _R_CHECK_SYSTEM_CLOCK_=FALSE \
             _R_CHECK_TESTS_NLINES_=0

.PHONY: all deps install doc demo build check test bench clean sanitize valgrind fuzz

all: check

deps:
	bash tools/install-deps.sh

# Installs the working tree (compiled in a temporary copy, never in src/).
install:
	bash tools/dev-install.sh "$(LIB)"

doc:
	$(RSCRIPT) -e 'roxygen2::roxygenise(load_code = "source")'

demo: deps install
	R_LIBS="$(LIB)" $(RSCRIPT) inst/demo/seeds.R

# Builds vignettes when there are some; no PDF manual (no LaTeX here).
build:
	rm -f $(PKG)_*.tar.gz
	$(R) CMD build --no-manual .

# Fails when R CMD check fails or reports any ERROR or WARNING (NOTEs pass).
check: build
	rm -rf $(PKG).Rcheck
	@rc=0; env $(CHECK_ENV) $(R) CMD check --as-cran --no-manual $(TARBALL) || rc=$$?; \
	log=$(PKG).Rcheck/00check.log; \
	status=$$(grep '^Status:' $$log 2>/dev/null | tail -n 1); \
	echo "R CMD check exit code: $$rc; $${status:-no Status line in $$log}"; \
	if [ $$rc -ne 0 ]; then exit $$rc; fi; \
	case "$$status" in \
	  *ERROR*|*WARNING*) echo "check: failing because of the ERROR/WARNING above" >&2; exit 1 ;; \
	  "Status: OK"|"Status: "*NOTE*) ;; \
	  *) echo "check: could not read the check status" >&2; exit 1 ;; \
	esac

test: check

# Hardening (tools/sanitize.sh, tools/valgrind.sh): the test suite against an
# ASan+UBSan build (~3-4 min), and a trimmed suite under valgrind memcheck
# (~6-8 min; VALGRIND_TESTS=all for the whole suite, about an hour).  Each
# builds its own private library; any sanitizer report, memory error or leak
# from lmmfit fails the target.
sanitize:
	bash tools/sanitize.sh

valgrind:
	bash tools/valgrind.sh

# The fuzz test at the issue's full size (FUZZ_N cases) and the optimum
# battery of test-optimum.R (OPTIMUM_N random designs against lme4, on
# OPTIMUM_CORES processes; ~0.18 s of CPU per design, nearly all lme4's, so
# 10,000 take ~15 min on 2 free cores and a CI with less time passes a
# smaller OPTIMUM_N) against the working tree.  Both files
# run; the target fails when either does.  LMMFIT_OPTIMUM_CSV=file in the
# environment keeps the battery's cases.
FUZZ_N ?= 10000
OPTIMUM_N ?= 10000
OPTIMUM_CORES ?= 2
fuzz:
	@lib=$$(mktemp -d) && trap 'rm -rf "$$lib"' EXIT && bash tools/dev-install.sh "$$lib" && \
	cd tests/testthat && LMMFIT_FUZZ_N=$(FUZZ_N) LMMFIT_OPTIMUM_N=$(OPTIMUM_N) LMMFIT_OPTIMUM_CORES=$(OPTIMUM_CORES) \
	  R_LIBS="$$lib" $(RSCRIPT) -e \
	  'r <- do.call(rbind, lapply(c("test-fuzz.R", "test-optimum.R"), function(f) as.data.frame(testthat::test_file(f, package = "lmmfit", load_package = "installed")))); quit(status = as.integer(sum(r$$failed) + sum(r$$error) > 0))'

# Runs every benchmark script in inst/bench (none is fine).
bench: install
	@found=0; for f in inst/bench/bench-*.R; do \
	  [ -e "$$f" ] || continue; found=1; \
	  echo "== $$f"; R_LIBS="$(LIB)" $(RSCRIPT) "$$f" || exit $$?; \
	done; \
	[ $$found -eq 1 ] || echo "bench: no inst/bench/bench-*.R scripts yet"

clean:
	rm -rf $(PKG).Rcheck $(PKG)_*.tar.gz
