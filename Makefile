# SegWAN front door. Everything real lives in CMake (build/) and scripts/.
#   make demo   - install what is missing, build, start the lab and the whole system
#   make test   - install what is missing, build, run every test (CTest)
#   make bench  - run the benchmarks (JSON lines on stdout)
MAKEFLAGS += --no-print-directory
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CTEST_ARGS ?=

.PHONY: all deps build test unit-test test-long demo bench clean format

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

format:
	@git ls-files '*.cpp' '*.h' | grep -v '^bpf/' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR)
