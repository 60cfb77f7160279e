# SegWAN front door. Everything real lives in CMake (build/) and scripts/.
#   make demo   - install what is missing, build, start the lab and the whole system
#   make test   - install what is missing, build, run every test (CTest)
#   make bench  - run the benchmarks (JSON lines on stdout)
MAKEFLAGS += --no-print-directory
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CTEST_ARGS ?=

.PHONY: all deps build test unit-test demo bench clean format

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

demo: build
	@deploy/lab/demo.sh

bench: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -L bench -V $(CTEST_ARGS)

format:
	@git ls-files '*.cpp' '*.h' | grep -v '^bpf/' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR)
