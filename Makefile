# The verbs developers and CI use. `make test` is what .ci/run calls; `make demo` is the main job.
SHELL := /bin/bash
PYTHON := .venv/bin/python3
RELEASE_DIR := .build/release
SO := $(RELEASE_DIR)/libutilbot_gateway.so
## The version, written once: the UBG_VERSION_ macros of the C types header.
VERSION_HEADER := Sources/UtilbotGatewayTypes/include/utilbot_gateway_types.h
version_part = $(shell sed -n 's/^\#define UBG_VERSION_$(1) \([0-9]*\)$$/\1/p' $(VERSION_HEADER))
VERSION_MAJOR := $(call version_part,MAJOR)
VERSION := $(VERSION_MAJOR).$(call version_part,MINOR).$(call version_part,PATCH)
SONAME := libutilbot_gateway.so.$(VERSION_MAJOR)
## The loop thread owns all mutable state (docs/ARCHITECTURE.md), so the release build drops the runtime
## exclusivity checks (about 7% of the CPU per event); debug builds and every test keep them.
RELEASE_SWIFT_FLAGS := -Xswiftc -enforce-exclusivity=unchecked
CC ?= cc
CFLAGS_TEST := -std=c11 -Wall -Wextra -Werror -pedantic -Iinclude
SWIFT_TEST_FLAGS ?=
export PYTHONPATH := $(CURDIR)/bindings/python
export UBG_PYTHON := $(CURDIR)/$(PYTHON)

.PHONY: all bootstrap build release cli-release test-cpp test-node test-rust install uninstall test-install check-abi update-abi wheel header check-header check-symbols examples demo \
	test test-swift test-c test-c-valgrind test-c-asan test-c-tsan test-python soak fuzz bench lint format clean

all: build

## Installs missing Debian packages (apt-get) and the Python packages (.venv).
bootstrap:
	@scripts/bootstrap.sh

build: bootstrap
	swift build

## The shared library as shipped: Swift runtime linked in statically, only ubg_ symbols exported.
## The SONAME carries the major version; the link in the build directory lets programs linked
## against it there (the C tests, the examples) find it by that name.
release: bootstrap
	swift build -c release --product utilbot_gateway -Xswiftc -static-stdlib $(RELEASE_SWIFT_FLAGS) \
		-Xlinker --version-script=$(CURDIR)/scripts/exports.map -Xlinker -soname=$(SONAME)
	ln -sf libutilbot_gateway.so $(RELEASE_DIR)/$(SONAME)

## The command-line client as shipped: the Swift runtime linked in.
cli-release: bootstrap
	swift build -c release --product utilbot-gateway -Xswiftc -static-stdlib $(RELEASE_SWIFT_FLAGS)

PREFIX ?= /usr/local
INSTALL_VARS = PREFIX=$(PREFIX) DESTDIR=$(DESTDIR) $(if $(LIBDIR),LIBDIR=$(LIBDIR))

## Installs under PREFIX (default /usr/local; LIBDIR defaults to PREFIX/lib), staged under DESTDIR:
## the header, the library with its SONAME links, pkg-config and CMake files, the CLI.
install: release cli-release
	$(INSTALL_VARS) scripts/install.sh install

uninstall:
	$(INSTALL_VARS) scripts/install.sh uninstall

## Installs into a temporary PREFIX and builds and runs the example with pkg-config and with CMake.
test-install: release cli-release
	scripts/test-install.sh

## A platform wheel of the Python binding with the release .so inside (dist/).
wheel: release
	cp $(SO) bindings/python/utilbot_gateway/libutilbot_gateway.so
	strip --strip-unneeded bindings/python/utilbot_gateway/libutilbot_gateway.so
	rm -rf bindings/python/build dist
	$(PYTHON) -m pip wheel --no-deps --no-build-isolation --disable-pip-version-check -q -w dist bindings/python
	rm -rf bindings/python/utilbot_gateway/libutilbot_gateway.so bindings/python/build bindings/python/*.egg-info
	@ls dist/*.whl

## Regenerates include/utilbot_gateway.h from the Swift sources.
header: build
	$(PYTHON) scripts/gen-header.py

check-header: build
	scripts/check-header.sh

check-symbols: release
	scripts/check-symbols.sh $(SO)

## The ABI guard: exported symbols with their version nodes, and the header's signatures and struct
## layouts, against abi/ (libabigail). Fails on a removal or change; `make update-abi` accepts one.
check-abi: release
	scripts/check-abi.sh $(SO)

update-abi: release
	scripts/check-abi.sh --update

.build/examples/bot: examples/c/bot.c include/utilbot_gateway.h release
	@mkdir -p .build/examples
	$(CC) -std=c99 -Wall -Wextra -Werror -pedantic -Iinclude $< -L$(RELEASE_DIR) -lutilbot_gateway \
		-Wl,-rpath,$(CURDIR)/$(RELEASE_DIR) -lpthread -o $@

CXXFLAGS_STRICT := -std=c++17 -Wall -Wextra -Werror -pedantic -Wshadow -Iinclude -Ibindings/cpp/include
LINK_RELEASE := -L$(RELEASE_DIR) -lutilbot_gateway -Wl,-rpath,$(CURDIR)/$(RELEASE_DIR) -lpthread

.build/examples/bot-cpp: examples/cpp/bot.cpp bindings/cpp/include/utilbot/gateway.hpp include/utilbot_gateway.h release
	@mkdir -p .build/examples
	$(CXX) $(CXXFLAGS_STRICT) $< $(LINK_RELEASE) -o $@

examples: .build/examples/bot .build/examples/bot-cpp $(NODE_ADDON) .build/rust/debug/examples/bot

## The C++ wrapper's tests, compiled strictly with g++ and with clang++, each run against the dev gateway.
.build/cpp/test-%: bindings/cpp/tests/test_client.cpp bindings/cpp/include/utilbot/gateway.hpp include/utilbot_gateway.h release
	@mkdir -p .build/cpp
	$* $(CXXFLAGS_STRICT) $< $(LINK_RELEASE) -o $@

## The Node.js addon (Node-API, headers of the installed Node), linked against the release library.
NODE_ADDON := bindings/node/build/utilbot_gateway.node
$(NODE_ADDON): bindings/node/src/addon.c include/utilbot_gateway.h release
	@command -v node >/dev/null || { echo "node is missing (Node.js 20)" >&2; exit 1; }
	@mkdir -p bindings/node/build
	$(CC) -std=c11 -Wall -Wextra -Werror -shared -fPIC -DNODE_GYP_MODULE_NAME=utilbot_gateway \
		-I$$(dirname $$(command -v node))/../include/node -I/usr/include/node -Iinclude $< $(LINK_RELEASE) -o $@

## The Node.js binding's tests (node --test) against the dev gateway.
test-node: bootstrap $(NODE_ADDON)
	cd bindings/node && node --test test/

## The Rust crate's tests (cargo, no registry) against the dev gateway; its build in .build/rust.
CARGO := CARGO_TARGET_DIR=$(CURDIR)/.build/rust cargo
test-rust: bootstrap release
	@command -v cargo >/dev/null || { echo "cargo is missing (Rust)" >&2; exit 1; }
	cd bindings/rust && $(CARGO) test --offline --quiet

.build/rust/debug/examples/bot: bindings/rust/examples/bot.rs bindings/rust/src/*.rs release
	cd bindings/rust && $(CARGO) build --offline --quiet --example bot

test-cpp: bootstrap .build/cpp/test-g++ .build/cpp/test-clang++
	env -u LD_LIBRARY_PATH .build/cpp/test-g++
	env -u LD_LIBRARY_PATH .build/cpp/test-clang++

## The main job: the C example bot against the dev gateway over TLS, on loopback.
demo: bootstrap examples
	scripts/demo.sh

.build/cabi-tests: Tests/CABI/*.c Tests/CABI/*.h include/utilbot_gateway.h release .build/exit-midstream
	$(CC) $(CFLAGS_TEST) -D_GNU_SOURCE Tests/CABI/*.c -L$(RELEASE_DIR) -lutilbot_gateway \
		-Wl,-rpath,$(CURDIR)/$(RELEASE_DIR) -lpthread -o $@

## A program the exit tests run: it returns from main while events flow.
.build/exit-midstream: Tests/CABI/programs/exit_midstream.c include/utilbot_gateway.h release
	$(CC) $(CFLAGS_TEST) $< -L$(RELEASE_DIR) -lutilbot_gateway -Wl,-rpath,$(CURDIR)/$(RELEASE_DIR) -lpthread -o $@

test-swift: bootstrap
	swift build --build-tests
	swift test --skip-build $(SWIFT_TEST_FLAGS)

## The C tests link the release .so (no Swift toolchain on its library path) and use the dev gateway.
test-c: .build/cabi-tests
	env -u LD_LIBRARY_PATH .build/cabi-tests
	env -u LD_LIBRARY_PATH .build/cabi-tests soak

## libFuzzer on every parser that reads network bytes, FUZZ_SECONDS each (default 60); fails on
## any crash, leaving the input in .build-fuzz/crashes/. `make test` runs it.
fuzz: bootstrap
	FUZZ_SECONDS=$${FUZZ_SECONDS:-60} scripts/fuzz.sh

## The benchmark suite (benchmarks/README.md): every client against the C load server on loopback,
## best of 3, verified; writes benchmarks/results.md and prints the table. BENCH_FLAGS=--quick for a
## short try. Not part of `make test`: figures are measured, never asserted.
bench: release
	scripts/bootstrap-bench.sh
	$(PYTHON) benchmarks/run.py $(BENCH_FLAGS)

## The soak at full length: 200 clients, 10 minutes, random faults (the short form is in test-c).
soak: .build/cabi-tests
	UBG_SOAK_SECONDS=$${UBG_SOAK_SECONDS:-600} .build/cabi-tests soak

## The same C tests under valgrind: zero memory errors and zero definite or indirect leaks
## (valgrind.supp says why a Swift weak-reference side table is not one).
test-c-valgrind: .build/cabi-tests
	@command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install valgrind" >&2; exit 1; }
	valgrind -q --leak-check=full --show-possibly-lost=no --show-reachable=no \
		--errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
		--suppressions=Tests/CABI/valgrind.supp .build/cabi-tests

# Sanitizer builds: the library (debug, instrumented) and the C tests with the toolchain's clang,
# whose sanitizer runtimes match the Swift compiler's.
SWIFT_LIB := $(dir $(shell command -v swift))../lib/swift/linux
SAN_CFLAGS := -std=c11 -g -fno-omit-frame-pointer -fuse-ld=lld -Wall -Wextra -Werror -Iinclude -D_GNU_SOURCE

## The C tests with the library and the tests under AddressSanitizer: no error, no leak (each
## test process checks for leaks before it exits).
test-c-asan: bootstrap .build/exit-midstream
	swift build --product utilbot_gateway --sanitize=address --scratch-path .build-asan
	clang $(SAN_CFLAGS) -fsanitize=address Tests/CABI/*.c -L.build-asan/debug -lutilbot_gateway \
		-Wl,-rpath,$(CURDIR)/.build-asan/debug -lpthread -o .build-asan/cabi-tests
	ASAN_OPTIONS=detect_leaks=1 .build-asan/cabi-tests

## The C tests (the stress suite included) under ThreadSanitizer: no report.
test-c-tsan: bootstrap .build/exit-midstream
	swift build --product utilbot_gateway --sanitize=thread --scratch-path .build-tsan
	clang $(SAN_CFLAGS) -fsanitize=thread Tests/CABI/*.c -L.build-tsan/debug -lutilbot_gateway \
		-Wl,-rpath,$(CURDIR)/.build-tsan/debug -L$(SWIFT_LIB) -ldispatch -lBlocksRuntime \
		-Wl,-rpath,$(SWIFT_LIB) -lpthread -o .build-tsan/cabi-tests
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" .build-tsan/cabi-tests

test-python: bootstrap release wheel
	$(PYTHON) -m pytest -q Tests/Peers Tests/CLI Tests/Repository bindings/python/tests

## Every test: lint, Swift unit and integration tests, header, symbol and ABI checks, C end-to-end
## tests (plain, under valgrind, AddressSanitizer and ThreadSanitizer; the fault matrix; a short soak),
## the Python, C++, Node.js and Rust tests, the install (pkg-config and CMake consumers), the fuzzers (a minute each),
## the demo.
test: bootstrap lint test-swift check-header check-symbols check-abi test-c test-c-valgrind test-c-asan test-c-tsan \
	test-python test-cpp test-node test-rust test-install fuzz demo

format:
	swift format --in-place --recursive Sources Tests Package.swift examples

lint:
	swift format lint --strict --recursive Sources Tests Package.swift

clean:
	rm -rf .build
