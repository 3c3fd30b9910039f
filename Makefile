# voltfleet: `make up` runs the whole stack on this machine, `make test` runs every check CI runs.
# Both prepare a fresh Debian machine first (scripts/setup.sh).

SHELL := /bin/bash
CARGO ?= cargo
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)

# The test databases and servers scripts/setup.sh provides.
export VOLTFLEET_TEST_MYSQL_URL ?= mysql://voltfleet_test:voltfleet_test@127.0.0.1:3306/test
export VOLTFLEET_TEST_REDIS_URL ?= redis://127.0.0.1:6379
export VOLTFLEET_MOTO_SERVER ?= $(CURDIR)/.venv/bin/moto_server

.PHONY: up test setup build fmt lint check-fmt unit-and-integration shipping provision-check

setup:
	@bash scripts/setup.sh

## up: build in release mode and run every service with demo data (Ctrl-C stops it)
up: setup
	$(CARGO) build --release --bins
	$(TARGET_DIR)/release/voltfleet up

## test: formatting, lints, every test on SQLite and on MariaDB + Redis, the stacks' offline checks
## and the shipping checks
test: setup check-fmt lint unit-and-integration provision-check shipping

check-fmt:
	$(CARGO) fmt --all --check

lint:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

unit-and-integration:
	$(CARGO) build --workspace --bins --locked
	$(CARGO) test --workspace --locked --no-fail-fast

## provision-check: the CloudFormation stacks offline: policy rules, cfn-lint, checkov, environment files
provision-check:
	$(CARGO) build --workspace --bins --locked
	bash provision/check

## shipping: the image (buildah), the systemd units, the Packer templates and the AMI install
## scripts run in a Debian root (needs root and the debug binaries the step before builds)
shipping:
	$(CARGO) build --workspace --bins --locked
	bash tests/shipping/run

build:
	$(CARGO) build --workspace --bins

fmt:
	$(CARGO) fmt --all
