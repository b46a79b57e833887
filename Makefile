# Ember + mlr3ember. `make demo` and `make test` work from a fresh clone on Debian 12: they
# install the system packages they need first (apt-get; run as root or with sudo available).

SHELL := /bin/bash
SWIFT ?= $(shell command -v swift || echo /opt/swift/usr/bin/swift)
RLIB_LOCAL := $(CURDIR)/.rlib
PKG_VERSION := $(shell sed -n 's/^Version: //p' rpkg/DESCRIPTION)
TARBALL := mlr3ember_$(PKG_VERSION).tar.gz
APT_PACKAGES := r-base-dev libopenblas-dev libpng-dev libjpeg62-turbo-dev r-cran-r6 r-cran-checkmate r-cran-jsonlite r-cran-testthat \
  r-cran-future r-cran-png r-cran-jpeg r-cran-data.table dataset-fashion-mnist pkg-config
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Keep SwiftPM's caches inside the repository (fresh machines, CI).
SWIFTPM_FLAGS := --cache-path $(CURDIR)/.build-cache --config-path $(CURDIR)/.build-cache/config \
  --security-path $(CURDIR)/.build-cache/security

.PHONY: all deps swift-build swift-test c-archive c-test soak rpkg-sources rpkg-install rpkg-build r-test r-check \
  test demo check-mlr3 crosslang-fixtures clean sanitize sanitize-swift sanitize-threads sanitize-r fuzz fuzz-build

all: rpkg-install

## System packages (Debian): installed only when missing.
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing:$$missing"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

swift-build: deps
	$(SWIFT) build $(SWIFTPM_FLAGS)

## Swift unit and golden tests.
## Optimised, as shipped (the allocation-free training step is checked here); -enable-testing
## keeps @testable imports working.
swift-test: deps
	$(SWIFT) test $(SWIFTPM_FLAGS) -c release -Xswiftc -enable-testing

# Compiles a C program against include/ember.h with -Wall -Werror and links it with the engine
# archive and the static Swift runtime: $(call c_program,source,output).
SWIFT_STATIC = $$(dirname $$(dirname $$(readlink -f $(SWIFT))))/lib/swift_static/linux
c_program = gcc -std=c11 -Wall -Wextra -Werror -pedantic -Iinclude $(1) -o $(2) \
	  .build/release/libEmberStatic.a $(SWIFT_STATIC)/x86_64/swiftrt.o -L$(SWIFT_STATIC) \
	  -Wl,-Bstatic -lswiftCore -lswift_StringProcessing -lswiftGlibc -lswiftSynchronization -Wl,-Bdynamic \
	  -lopenblas -lpng -ljpeg -lstdc++ -lm -ldl -lpthread

## The engine as a static archive for C programs.
c-archive: deps
	@# SwiftPM appends to an existing archive: remove it so objects of deleted sources cannot linger.
	rm -f .build/release/libEmberStatic.a
	$(SWIFT) build $(SWIFTPM_FLAGS) -c release --product EmberStatic
	mkdir -p .build/c-test

## The C smoke test: compiled with -Wall -Werror against include/ember.h, linked with the engine.
c-test: c-archive
	$(call c_program,Examples/c/smoke.c,.build/c-test/smoke)
	.build/c-test/smoke rpkg/tests/testthat/fixtures/r_iris_mlp.safetensors

## Soak: SOAK_CYCLES (1000) fit / predict / serialize / load cycles in one process from C, Swift and
## R, each reporting its RSS slope (KiB per cycle over the second half) and failing on a live
## handle at the end or a slope above SOAK_SLOPE_KIB (docs/reliability.md).
SOAK_CYCLES ?= 1000
SOAK_SLOPE_KIB ?= 4
soak: c-archive rpkg-install
	$(call c_program,Examples/c/soak.c,.build/c-test/soak)
	.build/c-test/soak $(SOAK_CYCLES) $(SOAK_SLOPE_KIB)
	EMBER_SOAK_CYCLES=$(SOAK_CYCLES) EMBER_SOAK_SLOPE_KIB=$(SOAK_SLOPE_KIB) $(SWIFT) test $(SWIFTPM_FLAGS) -c release \
	  -Xswiftc -enable-testing --filter SoakTests
	@# The learner's cycles run when mlr3 is on R_LIBS (e.g. R_LIBS=/path/to/mlr3/library make soak).
	cd rpkg/tests && NOT_CRAN=true EMBER_SOAK_CYCLES=$(SOAK_CYCLES) EMBER_SOAK_SLOPE_KIB=$(SOAK_SLOPE_KIB) \
	  R_LIBS=$(RLIB_LOCAL):$(R_LIBS) Rscript -e 'testthat::test_dir("testthat", filter = "soak", package = "mlr3ember", load_package = "installed", reporter = "summary", stop_on_failure = TRUE)'

## Copies the engine sources into the R package (R CMD build packs only rpkg/).
rpkg-sources:
	rm -rf rpkg/tools/engine && mkdir -p rpkg/tools/engine
	cp -R Package.swift Sources include rpkg/tools/engine/

rpkg-install: deps rpkg-sources
	mkdir -p $(RLIB_LOCAL)
	R_LIBS=$(RLIB_LOCAL) R CMD INSTALL --no-test-load -l $(RLIB_LOCAL) rpkg
	R_LIBS=$(RLIB_LOCAL) Rscript -e 'library(mlr3ember); str(ember_info())'

rpkg-build: deps rpkg-sources
	R CMD build --no-build-vignettes rpkg

## The R package's tests against the installed package (mlr3 tests skip without mlr3).
r-test: rpkg-install
	cd rpkg/tests && NOT_CRAN=true R_LIBS=$(RLIB_LOCAL) Rscript -e 'testthat::test_dir("testthat", package = "mlr3ember", load_package = "installed", stop_on_failure = TRUE)'

## R CMD check of the built tarball; CI has no mlr3, so suggested packages are not forced.
r-check: rpkg-build
	_R_CHECK_FORCE_SUGGESTS_=false R CMD check --no-manual $(TARBALL)
	@if grep -q -E "^Status: .*(WARNING|ERROR)" mlr3ember.Rcheck/00check.log; then \
	  echo "R CMD check reported warnings or errors"; exit 1; fi

test: swift-test c-test r-test r-check
	@# The threaded tests under ThreadSanitizer (the representative part of make sanitize that CI
	@# runs), and a short fuzz pass over every reader of untrusted input (make fuzz runs longer)
	@# under AddressSanitizer and UBSan.
	$(MAKE) sanitize-threads
	$(MAKE) fuzz FUZZ_SECONDS=10

## Trains and evaluates an Ember MLP on a real data set from R.
demo: rpkg-install
	R_LIBS=$(RLIB_LOCAL) Rscript Examples/r/demo.R

## Runs the package's mlr3 tests against an existing library holding mlr3 (builds nothing):
##   make check-mlr3 RLIB=/path/to/lib   (after `make rpkg-install`)
check-mlr3:
	@if [ -z "$(RLIB)" ]; then echo "usage: make check-mlr3 RLIB=<library holding mlr3>"; exit 2; fi
	@if [ ! -d "$(RLIB_LOCAL)/mlr3ember" ]; then echo "mlr3ember is not installed in $(RLIB_LOCAL): run 'make rpkg-install' first"; exit 2; fi
	cd rpkg/tests && R_LIBS=$(RLIB_LOCAL):$(RLIB) EMBER_REQUIRE_MLR3=true Rscript -e 'options(width = 200); cat("mlr3", format(packageVersion("mlr3")), "from", find.package("mlr3"), "\n"); res <- testthat::test_dir("testthat", package = "mlr3ember", load_package = "installed", filter = "mlr3", reporter = "summary", stop_on_failure = TRUE); df <- as.data.frame(res); print(df[, c("test", "nb", "failed", "skipped", "error")], right = FALSE)'

## Regenerates the cross-language fixtures (commit them): the model trained from Swift that the R
## test compares bit for bit, and the model file written from R that Swift and C load.
crosslang-fixtures: rpkg-install
	$(SWIFT) run $(SWIFTPM_FLAGS) ember-fixtures rpkg/tests/testthat/fixtures
	R_LIBS=$(RLIB_LOCAL) Rscript tools/crosslang/write_r_model.R rpkg/tests/testthat/fixtures

clean:
	rm -rf .build .build-cache .rlib rpkg/tools/engine mlr3ember.Rcheck $(TARBALL) \
	  .build-asan .build-tsan .build-rasan .rlib-asan Fuzz/.build
	cd rpkg && ./cleanup

## Benchmarks (not tests; Benchmarks/README.md): Ember from Swift, Ember through R (the package
## installed in .rlib: run `make rpkg-install` first to bench the current engine) and PyTorch
## (optional), measured in one run. BENCH_CORETYPES=1 runs everything with OPENBLAS_CORETYPE
## unset and =SkylakeX.
BENCH_PYTHON ?= python3
BENCH_RUN = $(BENCH_PYTHON) Benchmarks/run.py --ember .build/release/ember-bench --rlib $(RLIB_LOCAL)

.PHONY: bench bench-quick bench-products bench-latency bench-ftt bench-core bench-build bench-graph bench-extending bench-images bench-finetune bench-tabular

bench-build: deps
	$(SWIFT) build $(SWIFTPM_FLAGS) -c release --product ember-bench

## The mlr3torch paper's CPU grid and Fashion-MNIST (takes a while).
bench: bench-build
	$(BENCH_RUN) full

## A few cells of each, for everyday use.
bench-quick: bench-build
	$(BENCH_RUN) quick

## The grid's SGD cells: Swift's step against MKL's time for the batch's products alone on the same shapes.
bench-products: bench-build
	$(BENCH_RUN) products

## Only the FT-Transformers (the large one BENCH_FTT_REPEAT times).
bench-ftt: bench-build
	$(BENCH_RUN) ftt --repeat $(or $(BENCH_FTT_REPEAT),1)

## A network written as an mlr3pipelines graph against the predefined learner (needs a library
## with mlr3 and mlr3pipelines: MLR3_LIB=<path>).
bench-graph: rpkg-install
	R_LIBS=$(RLIB_LOCAL):$(MLR3_LIB) OMP_NUM_THREADS=1 Rscript Benchmarks/graph_bench.R

## What an R callback costs per epoch, and a custom loss against the built-in one.
bench-extending: rpkg-install
	R_LIBS=$(RLIB_LOCAL) OMP_NUM_THREADS=1 Rscript Benchmarks/extending_bench.R

## Fine-tuning: an epoch of ResNet-18 on 64 x 64 images with the body frozen against all trainable.
bench-finetune: rpkg-install
	R_LIBS=$(RLIB_LOCAL) OMP_NUM_THREADS=1 Rscript Benchmarks/finetune_bench.R

## The tabular learners at their defaults against ranger and cv_glmnet, 5-fold CV on seven tasks;
## writes Benchmarks/results-tabular.md (needs MLR3_LIB with mlr3, mlr3learners, mlr3pipelines;
## ranger, glmnet, mlbench and palmerpenguins from Debian).
bench-tabular: rpkg-install
	$(MAKE) deps APT_PACKAGES="r-cran-ranger r-cran-glmnet r-cran-mlbench r-cran-palmerpenguins"
	R_LIBS=$(RLIB_LOCAL):$(MLR3_LIB) OMP_NUM_THREADS=1 Rscript Benchmarks/tabular_bench.R

## Only the prediction latency table (one row through predict() and an mlr3 learner, 10,000 rows'
## rows/s; Ember through R vs PyTorch); the mlr3 row needs MLR3_LIB=<library with mlr3>.
bench-latency:
	R_LIBS="$(MLR3_LIB)" $(BENCH_RUN) latency

## EmberCore vs torch.matmul and small ops, one thread.
bench-core: bench-build
	$(BENCH_RUN) core

## Images side by side with PyTorch/torchvision (Ember through R): LeNet on Fashion-MNIST, ResNet-18,
## augmentation overhead, JPEG decoding; writes Benchmarks/results-images.md. BENCH_MODE=quick|full.
BENCH_MODE ?= quick
bench-images: rpkg-install bench-build
	$(BENCH_PYTHON) Benchmarks/image_bench.py $(BENCH_MODE) --ember .build/release/ember-bench --rlib $(RLIB_LOCAL)

## Reliability (docs/reliability.md). `make sanitize`: the Swift suite under AddressSanitizer (Swift
## and C) with UndefinedBehaviorSanitizer on the C code (Swift itself traps on overflow and
## out-of-range indexing; swiftc has no -sanitize=undefined on Linux), the threaded tests under
## ThreadSanitizer, and the R tests against an AddressSanitizer build of the package. Each build has
## its own folder, so the normal build is untouched. Suppressions: tools/sanitizers/ (with reasons).
TOOLCHAIN = $(shell dirname $$(dirname $$(readlink -f $(SWIFT))))
ASAN_RUNTIME = $(shell find $(TOOLCHAIN)/lib/clang -name 'libclang_rt.asan-x86_64.so' | head -n 1)
SAN_TEST := $(SWIFT) test $(SWIFTPM_FLAGS) -c release -Xswiftc -enable-testing
# LeakSanitizer is on for the fuzzers (checked after every input); halt on the first UBSan report.
ASAN_BASE := abort_on_error=0:suppressions=$(CURDIR)/tools/sanitizers/asan.supp
SAN_ENV := ASAN_OPTIONS=detect_leaks=1:$(ASAN_BASE) \
  LSAN_OPTIONS=suppressions=$(CURDIR)/tools/sanitizers/lsan.supp \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:suppressions=$(CURDIR)/tools/sanitizers/ubsan.supp \
  TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$(CURDIR)/tools/sanitizers/tsan.supp \
  SWIFT_BACKTRACE=enable=no
# The tests that run several threads: the pool's loops and split products, parallel image loading
# and prefetching, per-thread error text, and models trained concurrently from two threads.
THREADED_TESTS := 'ConcurrencyTests|testParallelEqualsSerial|testSerialLoopsFlushDenormalsLikeParallelLoops|testDirectConvolutionIsBitIdenticalAcrossThreadsAndInstructionSets|testResultsDoNotDependOnTheThreadCount|testSplitGemmMatchesDoubleSums|AttentionOpTests.testMatchesComposedOps|testSameSeedSameBatchAtAnyThreadCount|testBatchNormWithoutGradientsAndOnTwoThreads|testParallelGatherEqualsSerial|testBatchesComeBackInOrderFromAnotherThreadAndErrorsStayWithTheirBatch|testPrefetchGivesIdenticalWeightsAndPredictions|testLastErrorIsPerThread|testThePoolMeasuresTheRoundTripBetweenItsThreads|testThreadsOnTwoDiesSplitOnlyWideProducts|testDepthAndRowSplitsGiveTheBitsOfTheWholeProduct|testNarrowStepsRunOnOneThreadAcrossDies|testWideLayersGiveTheSameBitsAtOneAndTwoThreads'
RLIB_ASAN := $(CURDIR)/.rlib-asan
# Extra libraries for the R tests under ASan (e.g. one holding mlr3): SANITIZE_RLIBS=<path>.
SANITIZE_RLIBS ?=

sanitize: sanitize-swift sanitize-threads sanitize-r

# Skipped under ASan: their scalar reference loops (billions of checked accesses) take over half an
# hour there; the kernels they compare run in the other convolution and pooling tests.
ASAN_SKIP := 'testLargeConvolutionsMatchDirectSummation|testLargePoolingMatchesDirectLoops'

# LeakSanitizer is off for the XCTest process: XCTest on Linux never releases a weak reference it
# forms to each test case (awaitUsingExpectation), so every test case and the fixtures it cached
# are reported at exit (hundreds of MB, all reached from that one 32-byte block).
sanitize-swift: deps
	$(SAN_ENV) ASAN_OPTIONS=detect_leaks=0:$(ASAN_BASE) $(SAN_TEST) --scratch-path $(CURDIR)/.build-asan \
	  --sanitize=address -Xcc -fsanitize=undefined -Xcc -fno-sanitize-recover=undefined --skip $(ASAN_SKIP)

sanitize-threads: deps
	$(SAN_ENV) $(SAN_TEST) --scratch-path $(CURDIR)/.build-tsan --sanitize=thread --filter $(THREADED_TESTS)

## The R package built with EMBER_SANITIZE=address (rpkg/configure) into its own library; R runs
## with the toolchain's ASan runtime preloaded. detect_leaks=0: R does not free its own heap at
## exit (nor do the packages it loads), so LeakSanitizer would report R's memory, not the engine's;
## engine leaks are checked by sanitize-swift, whose process frees what it owns.
sanitize-r: deps rpkg-sources
	rm -rf $(RLIB_ASAN) && mkdir -p $(RLIB_ASAN)
	EMBER_SANITIZE=address EMBER_BUILD_DIR=$(CURDIR)/.build-rasan R_LIBS=$(RLIB_ASAN) \
	  R CMD INSTALL --no-test-load -l $(RLIB_ASAN) rpkg
	cd rpkg/tests && LD_PRELOAD=$(ASAN_RUNTIME) ASAN_OPTIONS=detect_leaks=0:$(ASAN_BASE) \
	  SWIFT_BACKTRACE=enable=no NOT_CRAN=true R_LIBS=$(RLIB_ASAN)$(if $(SANITIZE_RLIBS),:$(SANITIZE_RLIBS)) \
	  Rscript -e 'testthat::test_dir("testthat", package = "mlr3ember", load_package = "installed", reporter = "summary", stop_on_failure = TRUE)'

## libFuzzer targets (Fuzz/, a package of its own) for every reader of untrusted input, built with
## coverage and AddressSanitizer (UBSan on the C code); each runs FUZZ_SECONDS (default 60), from
## the committed seeds (Fuzz/corpus/<target>) and what earlier runs found (Fuzz/.build/corpus).
## A crash leaves its input in Fuzz/.build/artifacts and fails the target. FUZZ_TARGETS picks some.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= model-file safetensors config network image-transform image
FUZZ_DIR := $(CURDIR)/Fuzz/.build

fuzz-build: deps
	@# SwiftPM links with gold, which fails on libFuzzer's objects: link with the toolchain's lld.
	mkdir -p $(FUZZ_DIR)
	printf '{"schemaVersion": "1.0", "linker": {"path": "%s"}}\n' $(TOOLCHAIN)/bin/ld.lld > $(FUZZ_DIR)/toolset.json
	cd Fuzz && $(SWIFT) build $(SWIFTPM_FLAGS) -c release --toolset $(FUZZ_DIR)/toolset.json \
	  --sanitize=address -Xswiftc -sanitize=fuzzer -Xcc -fsanitize=fuzzer-no-link \
	  -Xcc -fsanitize=undefined -Xcc -fno-sanitize-recover=undefined

fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_DIR)/corpus/$$t $(FUZZ_DIR)/artifacts/$$t; \
	  echo "== fuzz-$$t: $(FUZZ_SECONDS) s"; \
	  $(SAN_ENV) $(FUZZ_DIR)/release/fuzz-$$t -max_total_time=$(FUZZ_SECONDS) -timeout=20 -rss_limit_mb=3072 \
	    -max_len=65536 -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/artifacts/$$t/ \
	    $(FUZZ_DIR)/corpus/$$t Fuzz/corpus/$$t 2>$(FUZZ_DIR)/fuzz-$$t.log \
	    || { tail -n 60 $(FUZZ_DIR)/fuzz-$$t.log; echo "fuzz-$$t failed: input in $(FUZZ_DIR)/artifacts/$$t"; exit 1; }; \
	  grep -E '^(stat::number_of_executed_units|stat::new_units_added)|^Done' $(FUZZ_DIR)/fuzz-$$t.log; \
	done
