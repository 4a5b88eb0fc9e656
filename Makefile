# tagpilot: common tasks. `make test` is the whole suite, test servers included (started if not running).
SHELL := /bin/bash
CARGO ?= cargo
TESTINFRA := hack/testinfra
PORT_BASE ?= $(or $(TAGPILOT_PORT_BASE),17000)
export TAGPILOT_PORT_BASE := $(PORT_BASE)
export TAGPILOT_TESTINFRA_ENV ?= $(or $(TAGPILOT_TESTINFRA),/tmp/tagpilot-testinfra-$(PORT_BASE))/testinfra.env

.PHONY: demo demo-cluster image-rootfs all build test test-unit lint fmt testinfra-up testinfra-down k8s-build bench bench-compare bench-gates bench-pull-requests bench-clone-cache fuzz template-conformance semver-conformance crds scale-reflector clean

all: build

## demo: Flux's image-update guide without a cluster: a loopback registry and git server, `tagpilot run --once`,
##   and the commit it pushed
demo:
	bash hack/demo/demo.sh

## demo-cluster: the same on the local kube-apiserver with both controllers running (`tagpilot get images all -A`)
demo-cluster:
	bash hack/demo/demo-cluster.sh

## image-rootfs: the container image's root filesystem (what the Dockerfile's build stage makes) in
##   target/image-rootfs, from a release build
image-rootfs:
	bash hack/image/rootfs.sh target/image-rootfs --profile release

## build: debug build of every crate
build:
	$(CARGO) build --workspace --all-targets

## test: the whole suite against the real servers (starts them when needed; leaves them running); the e2e
##   tests run the controller binaries, so those are built first
test: testinfra-up
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace --no-fail-fast

## test-unit: the tests that need no server
test-unit:
	$(CARGO) test --workspace --exclude tagpilot-e2e

## lint: formatting check and clippy with warnings as errors
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## testinfra-up: start (or check) kube-apiserver, registries and git servers on 127.0.0.1
testinfra-up:
	bash $(TESTINFRA)/up.sh

## testinfra-down: stop exactly the servers testinfra-up started
testinfra-down:
	bash $(TESTINFRA)/down.sh

## k8s-build: build kube-apiserver v1.20.2 from Debian's source package once (cached in ~/.cache/tagpilot)
k8s-build:
	bash $(TESTINFRA)/k8s-build.sh

## crds: regenerate config/crd from the Rust API types (a test fails when the checked-in files are stale)
crds:
	$(CARGO) run -q -p tagpilot-crdgen

## scale-reflector: image-reflector-controller with 1,000 ImageRepositories x 1,000 tags and 1,000 ImagePolicies
##   on an API server of its own; prints time to all Ready, RSS, CPU and API requests per scan interval
SCALE_ARGS ?= --repos 1000 --tags 1000 --interval-seconds 120
scale-reflector: testinfra-up
	$(CARGO) build --release -p image-reflector-controller
	$(CARGO) run --release -q -p tagpilot-testinfra --bin reflector-scale -- $(SCALE_ARGS)

## bench: criterion benchmarks
bench:
	$(CARGO) bench --workspace --exclude tagpilot-e2e

clean:
	$(CARGO) clean

## template-conformance: re-render the template corpus with Go's text/template + sprig (Debian packages)
##   into crates/tagpilot-core/tests/data/templates/expected.json; the Rust tests compare against it
template-conformance:
	bash $(TESTINFRA)/install-deps.sh --templates
	GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS= go run hack/template-conformance/main.go crates/tagpilot-core/tests/data/templates
	$(CARGO) test -p tagpilot-core --test template_conformance

## semver-conformance: check the range table (crates/tagpilot-core/tests/data/semver-ranges.tsv) against Go's
##   Masterminds/semver as Debian ships it (v3.2.0: lines marked group-pre / v3.2.1 are counted apart); with
##   SEMVER_GOPATH=<a GOPATH holding Masterminds/semver v3.3+> every line must agree
semver-conformance:
	bash $(TESTINFRA)/install-deps.sh --bench
	GOPATH=$(or $(SEMVER_GOPATH),/usr/share/gocode) SEMVERCHECK_STRICT=$(if $(SEMVER_GOPATH),1,0) GO111MODULE=off GOFLAGS= \
	  go run hack/go-harness/semvercheck/main.go crates/tagpilot-core/tests/data/semver-ranges.tsv | tee /dev/stderr | grep -q ' 0 mismatches'

## bench-compare: tagpilot vs the Go libraries Flux uses, timed side by side on the same inputs
bench-compare:
	bash hack/bench-compare/policy.sh
	bash hack/bench-compare/setters.sh
	bash hack/bench-compare/registry.sh
	bash hack/bench-compare/git.sh
	bash hack/bench-compare/leader.sh

## bench-gates: the ImagePolicy gates' registry requests (1,000-tag repository) and the cost of one cosign
##   verification, tagpilot beside Go's standard library (needs make testinfra-up)
bench-gates:
	bash hack/bench-compare/gates.sh

## bench-pull-requests: what proposing an update as a pull request costs: tagpilot run pushing to a branch, with
##   spec.pullRequest, and the git CLI + curl by hand, on the GitHub stand-in (needs make testinfra-up)
bench-pull-requests:
	bash hack/bench-compare/pull-requests.sh

## bench-clone-cache: kept clones against a clone per run (as Flux) and the git CLI, on a 20,000-file repository
##   (needs make testinfra-up)
bench-clone-cache:
	bash hack/bench-compare/clone-cache.sh

## fuzz: run each fuzz target (setters, template, registry, receiver, credentials, cosign; cargo-fuzz on the stable
##   toolchain, no sanitizer) for FUZZ_SECONDS, seeded from the test data; FUZZ_TARGETS picks some
FUZZ_TARGETS ?= setters template registry receiver credentials cosign
fuzz:
	for t in $(FUZZ_TARGETS); do bash hack/fuzz.sh $$t $(FUZZ_SECONDS) || exit 1; done
