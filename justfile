# vds-proxy tasks. `just` itself: cargo install --locked just

# Build, boot two local test hosts, deploy the example to them, print status.
demo:
    bash tests/testbed/demo.sh

# Every test: unit, snapshot, CLI and real-host (testbed) tests; the test hosts it boots
# are stopped afterwards, whatever the result.
test:
    #!/usr/bin/env bash
    set -euo pipefail
    trap 'bash tests/testbed/down.sh' EXIT
    bash tests/testbed/setup.sh
    cargo nextest run --no-fail-fast

# Only the tests that need no hosts.
test-offline:
    cargo nextest run -E 'not binary(testbed)'

build:
    cargo build --release

# Static builds for x86_64 and aarch64 nodes in dist/ (cargo-zigbuild; the aarch64 one
# smoke-tested under qemu-user), for `relay_binaries` in vds-proxy.toml.
dist:
    bash tools/dist.sh

# The manual page, from the same definitions as the flags: target/man/vds-proxy.1
man:
    mkdir -p target/man
    cargo run -q -- man > target/man/vds-proxy.1

lint:
    cargo fmt --all -- --check
    cargo clippy --all-targets -- -D warnings
    shellcheck -s sh src/engine/scripts/*.sh src/roles/*/*.sh
    shellcheck -s bash tests/testbed/*.sh benches/relay/*.sh benches/registry/*.sh benches/fleet/*.sh tools/*.sh .ci/run

# Deploy wall-time figures on 3 and 8 testbed hosts.
bench-deploy:
    bash tests/testbed/bench-deploy.sh

# Apply timings of a transparent HAProxy with replicas and a WireGuard mesh on 3 testbed hosts (release build)
bench-stack:
    bash tests/testbed/bench-stack.sh

# The same stack (socat routes + HAProxy in front of replicas) on N test hosts by pyinfra and
# by vds-proxy, next to the SSH floor: first apply, no-op, scale, one-host change, status.
bench-fleet *sizes="8 32 100":
    bash benches/fleet/run.sh {{sizes}}

# One host of that stack: its CPU in each step of a first apply, a scale and a no-op.
bench-steps:
    bash benches/fleet/steps.sh

# Boot N test hosts (default 4) and leave them running.
testbed-up n="4":
    bash tests/testbed/setup.sh {{n}}

testbed-down:
    bash tests/testbed/down.sh

# The relay unit as deployed on the test hosts next to HAProxy (with and without tcplog) and
# socat, then the same three on loopback: connections/s, throughput, latency, memory, CPU.
bench-registry:
    bash benches/registry/hosts.sh

bench-relay:
    bash benches/relay/hosts.sh
    bash benches/relay/run.sh
