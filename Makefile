# kubedag: the README's commands are `make demo` and `make test`.
SHELL := /bin/bash
E2E_DIR ?= /var/lib/kubedag-e2e
export PATH := $(E2E_DIR)/bin:$(HOME)/.cargo/bin:/usr/local/go/bin:$(PATH)

.PHONY: build release test unit lint fmt crds cluster-up cluster-down smoke demo install image manifests bench
.PHONY: dist

build:
	cargo build --locked

release:
	cargo build --locked --release

## Every test: unit + property, CRD drift, the cluster smoke test, and e2e on the local cluster.
test:
	scripts/test.sh

## Unit and property tests only (no cluster).
unit:
	cargo test --locked

lint:
	cargo fmt --check
	cargo clippy --locked --all-targets -- -D warnings

fmt:
	cargo fmt

## Regenerate crds/ from the Rust types.
crds:
	cargo run -q --locked -- crds > crds/kubedag.io.yaml
	cp crds/kubedag.io.yaml charts/kubedag/files/crds/kubedag.io.yaml

## The local real control plane and node; prints the export lines to use it.
cluster-up:
	@e2e/cluster-up.sh

cluster-down:
	@e2e/cluster-down.sh

smoke:
	e2e/smoke-test.sh

## The main job: local cluster (if no KUBECONFIG), Helm install, examples, summary.
demo:
	scripts/demo.sh

## Helm install of the CRDs and the operator into the current KUBECONFIG cluster.
install:
	scripts/install.sh

## The operator image (no Docker): target/image/kubedag-dev.tar, imported into the local cluster if up.
image:
	scripts/build-image.sh release dev

## Regenerate manifests/install.yaml from the chart (for kubectl apply / GitOps).
manifests:
	scripts/render-manifests.sh

## Benchmarks (bench/README.md): simulated node, plain-client Job and Pod baselines, workloads (e) ui, a-d, f,
## and (a), (c) on Argo Workflows (built once by bench/argo.sh; BENCH_ARGO= skips it);
## writes bench/results/latest.{json,md}. Quick run: make bench BENCH_SCALE=0.1
bench:
	bench/run.sh

## Release artifacts in target/dist/: operator image (OCI archive), packaged chart, kubectl-dag binary
## archive, krew plugin manifest, SHA256SUMS. VERSION defaults to the chart's appVersion.
dist:
	scripts/dist.sh
