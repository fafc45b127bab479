# podwire: the front door. Meson and ninja do the work in build/.
#   make            build (installs missing Debian packages when root)
#   make test       all tests, then again the ring/channel tests under
#                   ASan+UBSan and TSan; last line "N passed, N failed, N skipped"
#   make test-plain / make test-sanitize   one half of that
#   make fuzz       the fuzzers alone (control protocol, memif), longer: FUZZ_SECONDS=600 each
#   make demo       the channel table (shm vs unix vs tcp), then sockperf pod to
#                   pod with and without podwire, then a 2-node lab: every path
#                   side by side and a latency plot (as root)
#   make bench      longer runs of the channel table, bench-pods.sh with every
#                   sockperf size, bench-lab.sh (as root), as for docs/BENCHMARKS.md
#   make bench-rdma podwire0 (the virtual RDMA device) against TCP in a 2-node
#                   lab: perftest and sockperf at five sizes, a table and a plot
#                   (as root; docs/RDMA.md)
#   make bench-nfv  seed 000's table of DPDK pod data paths on real components:
#                   Linux bridge, testpmd pods over memif and vhost-user, OvS-DPDK,
#                   podwire-switch; a table and a plot (as root; docs/NFV.md)
#   make lint       clang-format check (.clang-format is the law), cppcheck, clang-tidy
#   make clean

BUILD ?= build
NINJA ?= ninja
FUZZ_SECONDS ?= 600
# The real control plane the kube-real tests run against: built once from
# Debian's kubernetes source package and cached (tools/kube-build.sh); without
# it those tests skip and say why.
KUBE_BUILD = tools/kube-build.sh >/dev/null || echo "podwire: no Kubernetes control plane; the kube-real tests will skip" >&2

.PHONY: all deps test test-plain test-sanitize fuzz demo bench bench-rdma bench-nfv bench-kube lint format clean

all: $(BUILD)/build.ninja
	$(NINJA) -C $(BUILD)

deps:
	@tools/deps.sh build

$(BUILD)/build.ninja: | deps
	meson setup $(BUILD)

test: all
	@tools/deps.sh test
	@$(KUBE_BUILD)
	@tools/run-tests.sh all

test-plain: all
	@tools/deps.sh test
	@$(KUBE_BUILD)
	@tools/run-tests.sh plain

test-sanitize: all
	@tools/deps.sh test
	@tools/run-tests.sh sanitize

fuzz: all
	@tools/deps.sh test
	PW_FUZZ_SECONDS=$(FUZZ_SECONDS) meson test -C $(BUILD) --suite fuzz --print-errorlogs -t 0

demo: all
	@tools/deps.sh demo
	$(BUILD)/src/bench/podwire-bench suite
	@if [ "$$(id -u)" = 0 ]; then \
		echo; echo "Pod to pod (two network namespaces), kernel vs podwire: sockperf,"; \
		echo "and short-lived connections (nginx with one per request, connect cycles):"; \
		tools/bench-pods.sh --quick -r 3 2; \
		echo; echo "A 2-node podwire lab, every path side by side:"; \
		tools/bench-lab.sh -t 1 -r 3; \
		echo; echo "podwire0, the virtual RDMA device, at 64 B (perftest) beside TCP (sockperf):"; \
		tools/bench-rdma.sh --sizes 64 -r 1; \
	else \
		echo "(run as root to also see sockperf pod to pod with and without podwire,"; \
		echo " and a 2-node lab: tools/bench-lab.sh)"; \
	fi

bench: all
	@tools/deps.sh demo
	$(BUILD)/src/bench/podwire-bench suite --duration 5 --warmup 1
	@if [ "$$(id -u)" = 0 ]; then \
		tools/bench-pods.sh --sweep -r 5 3; \
		tools/bench-lab.sh -r 5; \
	else \
		echo "(run as root for the pod-to-pod and lab benchmarks)"; \
	fi

bench-rdma: all
	@tools/deps.sh demo
	@if [ "$$(id -u)" = 0 ]; then \
		tools/bench-rdma.sh -r 3; \
	else \
		echo "bench-rdma: run as root (a 2-node lab of network namespaces)"; exit 1; \
	fi

bench-nfv: all
	@tools/deps.sh test
	@if [ "$$(id -u)" = 0 ]; then \
		tools/bench-nfv.sh -r 3; \
	else \
		echo "bench-nfv: run as root (network namespaces, DPDK, OvS-DPDK)"; exit 1; \
	fi

bench-kube: all
	@tools/deps.sh test
	@if [ "$$(id -u)" = 0 ]; then \
		tools/kube-build.sh >/dev/null && \
		tools/bench-services.sh -r 5 && \
		python3 tools/bench-sched-live.py $(BUILD) --nodes 500 --pods 2000 --real; \
	else \
		echo "bench-kube: run as root (network namespaces, the control plane's build)"; exit 1; \
	fi

lint: all
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
		--inline-suppr --std=c11 -Iinclude -D_GNU_SOURCE src tools tests
	clang-tidy -p $(BUILD) --quiet $$(git ls-files 'src/*.c') 2>/dev/null

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) build-asan build-tsan
