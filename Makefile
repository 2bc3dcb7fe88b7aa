# The verbs developers and CI use. `make test` is what .ci/run calls.
SHELL := /bin/bash
PYTHON := .venv/bin/python3
SWIFT_TEST_FLAGS ?=

.PHONY: all bootstrap build test test-swift test-peers format lint clean

all: build

## Installs missing Debian packages (apt-get) and the Python test peers' packages (.venv).
bootstrap:
	@scripts/bootstrap.sh

build: bootstrap
	swift build

## Every test: Swift unit and integration tests (against Python websockets), then the peers' own tests.
test: bootstrap lint
	swift build --build-tests
	UBG_PYTHON=$(abspath $(PYTHON)) swift test --skip-build $(SWIFT_TEST_FLAGS)
	$(PYTHON) -m pytest -q Tests/Peers

format:
	swift format --in-place --recursive Sources Tests Package.swift

lint:
	swift format lint --strict --recursive Sources Tests Package.swift

clean:
	rm -rf .build
