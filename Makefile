# SegWAN front door. Everything real lives in CMake (build/) and scripts/.
#   make demo   - install what is missing, build, start the lab and the whole system
#   make test   - install what is missing, build, run every test (CTest)
#   make bench  - run the benchmarks (JSON lines on stdout)
#   make fuzz   - build the libFuzzer targets with clang and run each for FUZZ_SECONDS
MAKEFLAGS += --no-print-directory
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CTEST_ARGS ?=

.PHONY: all deps build test unit-test test-long demo bench fuzz clean format

all: build

deps:
	@scripts/install-deps

$(BUILD_DIR)/CMakeCache.txt: | deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

build: deps $(BUILD_DIR)/CMakeCache.txt
	@cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) -LE bench $(CTEST_ARGS)

unit-test: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) -L unit $(CTEST_ARGS)

# What CI leaves out for time: an agent away for 5 minutes comes back measuring.
test-long: build
	@SEGWAN_OUTAGES="10 30 300" SEGWAN_BUILD_DIR=$(abspath $(BUILD_DIR)) SEGWAN_SOURCE_DIR=$(CURDIR) \
		bash tests/lab/edge_faults_test.sh

demo: build
	@deploy/lab/demo.sh

bench: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -L bench -V $(CTEST_ARGS)

# libFuzzer targets (fuzz/README.md), built by clang in their own build folder and run from a
# copy of the committed corpus; a crash or broken invariant leaves its input in FUZZ_DIR.
FUZZ_BUILD_DIR ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_DIR ?= $(FUZZ_BUILD_DIR)/runs
fuzz: deps
	@CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD_DIR) -DSEGWAN_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(FUZZ_BUILD_DIR) -j $(JOBS) --target stamp_reflector_fuzz stamp_wire_fuzz
	@set -e; for t in stamp_reflector stamp_wire; do \
		mkdir -p $(FUZZ_DIR)/$$t; cp fuzz/corpus/$$t/* $(FUZZ_DIR)/$$t/; \
		echo "--- $$t for $(FUZZ_SECONDS) s"; \
		$(FUZZ_BUILD_DIR)/fuzz/$${t}_fuzz -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			-artifact_prefix=$(FUZZ_DIR)/$$t- $(FUZZ_DIR)/$$t 2>&1 | grep -E '^(stat::number_of_executed_units|stat::new_units_added|==|invariant)|SUMMARY'; \
	done

format:
	@git ls-files '*.cpp' '*.h' | grep -v '^bpf/' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR)
