# Two commands on a fresh machine: `make run` serves the site, `make test` runs every test.
PY := .venv/bin/python
PIP := .venv/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test setup setup-dev assets engine images cluster unit bench check packages-run packages-test site-image deploy-cluster

.venv/bin/python:
	python3 -m venv .venv
	$(PIP) install -q --upgrade pip

# Installs pinned dependencies (requirements.lock pins every transitive package too).
setup: .venv/bin/python
	$(PIP) install -q -r requirements.txt -c requirements.lock
	$(MAKE) assets
	$(PY) manage.py migrate -v0

setup-dev: setup
	$(PIP) install -q -r requirements-dev.txt -c requirements.lock

# xterm.js and CodeMirror 5 (the editor tab: a plain script, no bundler) come from npm
# (package-lock.json) into an ignored static folder; never committed.
# axe-core (a devDependency) stays in node_modules: only the accessibility browser test loads it.
assets:
	npm ci --no-audit --no-fund --loglevel=error
	./scripts/vendor-assets.sh node_modules static/vendor

# The Debian packages: installed when missing (as root), or the exact apt-get line is printed.
packages-run:
	./scripts/install-packages.sh run

packages-test:
	./scripts/install-packages.sh test

# Start a Docker engine if none answers (needs root and Debian's docker.io).
engine:
	./scripts/start-dockerd.sh

images:
	$(PY) manage.py build_images

# This machine's Kubernetes cluster (cluster/, docs/kubernetes.md): built from Go modules the first
# time (about twenty minutes on two cores), then started in seconds. Not used when a kubeconfig is
# configured. `$(PY) -m cluster status|stop|reset` for the rest.
cluster:
	./scripts/local-cluster.sh

# The site on a Kubernetes cluster (docs/scaling.md): its image built offline from Debian packages
# (cached in ~/.cache/tutorial-site-image) and pushed to the classroom registry, then deploy/kubernetes
# applied with kustomize into NAMESPACE (default tutorial) of $$KUBECONFIG, else the local cluster.
site-image:
	./scripts/build-site-image.sh

deploy-cluster:
	./scripts/deploy-cluster.sh --namespace $(or $(NAMESPACE),tutorial)

# Without a Docker engine (or without root to start one) the site still runs; the lesson pages say
# what is wrong and how to fix it.
run: packages-run
	$(MAKE) setup
	-./scripts/start-dockerd.sh && $(PY) manage.py build_images && ./scripts/start-registry.sh && $(PY) manage.py seed_registry \
	  && ./scripts/local-cluster.sh --background
	HOST=$(HOST) PORT=$(PORT) ./scripts/run-site.sh

test: packages-test
	$(MAKE) setup-dev
	./scripts/start-dockerd.sh
	$(PY) manage.py build_images
	./scripts/start-registry.sh
	$(PY) manage.py seed_registry
	$(PY) manage.py check_lessons --strict
	TUTORIAL_LOCAL_CLUSTER=1 ./scripts/local-cluster.sh
	TUTORIAL_TEST_KUBECONFIG=$${TUTORIAL_TEST_KUBECONFIG:-$(CURDIR)/data/cluster/admin.kubeconfig} \
	  ./scripts/run-tests.sh $(PYTEST_ARGS)

# Everything that needs no engine, cluster or browser: unit tests, and view and permission tests on
# the in-memory backend (tests/fakes.py). Engine-backed view tests are marked `engine`.
unit: setup-dev
	.venv/bin/pytest tests/unit tests/views -m "not engine and not browser" $(PYTEST_ARGS)

bench: setup-dev
	$(PY) bench/console.py --json
	$(PY) bench/gateway.py --json
	./scripts/local-cluster.sh
	$(PY) bench/kubernetes.py --json
