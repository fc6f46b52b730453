# progressistad: run it, test it, build it.
#   make run    the daemon on 127.0.0.1:8000 with its dashboard, state under ./var
#   make test   every test leg (installs what the tests need, OS packages when root)
#   make screenshot   retake docs/dashboard.png and docs/history.png (the README's) from a live daemon in headless Chromium
#   make deb    dist/progressistad_<version>_all.deb with Debian's tooling

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYENV_ROOT ?= $(HOME)/.pyenv
# Newest and oldest Pythons: pyenv's when present, else the system python3 for the newest leg.
PYTHON_NEWEST ?= $(or $(lastword $(sort $(wildcard $(PYENV_ROOT)/versions/3.1[3-9]*/bin/python3))),$(shell command -v python3))
PYTHON_OLDEST ?= $(lastword $(sort $(wildcard $(PYENV_ROOT)/versions/3.9*/bin/python3)))
RUN_PYTHON ?= $(PYTHON_NEWEST)

VENV_RUN := .venv
VENV_NEWEST := .venv-newest
VENV_OLDEST := .venv-oldest
PIP_FLAGS := --disable-pip-version-check --quiet
PYTEST_FLAGS ?= -q -p no:cacheprovider
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: help run test test-newest test-oldest test-os-deps bench bench-startup clean screenshot deb

help:
	@sed -n 's/^#   //p' Makefile

$(VENV_RUN)/.installed: setup.py
	rm -rf $(VENV_RUN)
	rm -rf $(VENV_RUN)
	$(RUN_PYTHON) -m venv $(VENV_RUN)
	$(VENV_RUN)/bin/pip install $(PIP_FLAGS) -e .
	touch $@

run: $(VENV_RUN)/.installed
	@mkdir -p var
	$(VENV_RUN)/bin/progressistad --host $(HOST) --port $(PORT) --storage-path var/state.json

test: test-os-deps test-newest test-oldest

# OS packages the tests drive (browser, packaging tools, proxies); installed only as root.
OS_TEST_PACKAGES := curl
OS_TEST_PACKAGES += systemd
OS_TEST_PACKAGES += mandoc man-db groff-base
OS_TEST_PACKAGES += chromium
OS_TEST_PACKAGES += redis-server caddy
test-os-deps:
	@bash .ci/os-deps $(OS_TEST_PACKAGES)

$(VENV_NEWEST)/.installed: setup.py requirements/test.txt
	@test -n "$(PYTHON_NEWEST)" || { echo "no python3 found"; exit 1; }
	rm -rf $(VENV_NEWEST)
	$(PYTHON_NEWEST) -m venv $(VENV_NEWEST)
	$(VENV_NEWEST)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(VENV_NEWEST)/bin/pip install $(PIP_FLAGS) --upgrade --upgrade-strategy eager -e . -r requirements/test.txt
	touch $@

$(VENV_OLDEST)/.installed: setup.py requirements/test.txt requirements/oldest.txt
	rm -rf $(VENV_OLDEST)
	$(PYTHON_OLDEST) -m venv $(VENV_OLDEST)
	$(VENV_OLDEST)/bin/pip install $(PIP_FLAGS) -c requirements/oldest.txt -e . -r requirements/test.txt
	touch $@

test-newest: $(VENV_NEWEST)/.installed
	@echo "== leg: newest ($$($(VENV_NEWEST)/bin/python -c 'import sys,tornado;from importlib.metadata import version as v;print("Python",sys.version.split()[0],"tornado",tornado.version,"marshmallow",v("marshmallow"))'))"
	$(VENV_NEWEST)/bin/python -m pytest $(PYTEST_FLAGS) tests

test-oldest:
	@if [ -z "$(PYTHON_OLDEST)" ]; then \
	  if [ "$$CI" = true ]; then echo "Python 3.9 not found: the oldest leg cannot run"; exit 1; fi; \
	  echo "== leg: oldest SKIPPED (no Python 3.9 under $(PYENV_ROOT))"; exit 0; fi
	@$(MAKE) --no-print-directory $(VENV_OLDEST)/.installed
	@echo "== leg: oldest ($$($(VENV_OLDEST)/bin/python -c 'import sys,tornado;from importlib.metadata import version as v;print("Python",sys.version.split()[0],"tornado",tornado.version,"marshmallow",v("marshmallow"))'))"
	$(VENV_OLDEST)/bin/python -m pytest $(PYTEST_FLAGS) -m "not browser and not packaging and not booted and not schemathesis" tests

screenshot: test-os-deps $(VENV_NEWEST)/.installed
	UPDATE_SCREENSHOT=1 $(VENV_NEWEST)/bin/python -m pytest $(PYTEST_FLAGS) tests/browser/test_scale.py -k screenshot
	UPDATE_SCREENSHOT=1 $(VENV_NEWEST)/bin/python -m pytest $(PYTEST_FLAGS) tests/browser/test_history.py -k lists

# Benchmarks on loopback (bench/README.md): BENCH_ARGS=--quick for a couple of minutes.
BENCH_ARGS ?=
bench: $(VENV_NEWEST)/.installed
	@bash .ci/os-deps wrk
	$(VENV_NEWEST)/bin/python bench/run.py $(BENCH_ARGS)

# Startup time to READY=1 with 100,000 tasks in the state file, and the write that follows.
bench-startup: $(VENV_NEWEST)/.installed
	$(VENV_NEWEST)/bin/python bench/startup.py

# Packaging (issue 4): Debian build tools, lintian, rpm, caddy, man page linters,
# libseccomp's Python binding for the syscall-filter test, and the Debian
# libraries the installed package runs on.
DEB_BUILD_PACKAGES := debhelper dh-python pybuild-plugin-pyproject python3-all python3-setuptools \
	python3-wheel dpkg-dev fakeroot
OS_TEST_PACKAGES += $(DEB_BUILD_PACKAGES) lintian rpm caddy mandoc groff man-db systemd python3-seccomp \
	python3-tornado python3-marshmallow python3-configargparse python3-sdnotify python3-tqdm

# The RPM built with stand-ins for Fedora's Python macros (tests/packaging/rpm_standins).
OS_TEST_PACKAGES += rpm2cpio python3-build python3-installer

# The booted leg (tests/booted, marker booted): minimal Debian roots made by mmdebstrap
# and booted by systemd-nspawn; nsenter and unshare come with util-linux.
OS_TEST_PACKAGES += mmdebstrap debian-archive-keyring systemd-container

deb:
	@bash .ci/os-deps $(DEB_BUILD_PACKAGES)
	bash packaging/build-deb.sh dist

clean:
	rm -rf $(VENV_RUN) $(VENV_NEWEST) $(VENV_OLDEST) var build dist *.egg-info
