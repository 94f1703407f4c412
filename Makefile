# PodTap — two commands on a fresh Debian machine (as root):
#   make demo   build the offline analyzer and run it on the shipped pod-traffic capture, naming
#               pods, workloads and Services from the shipped cluster snapshot
#   make test   install what is missing, build, run every test
#   make fuzz   build the libFuzzer harnesses in Fuzz/ and run each for FUZZ_SECONDS (default 600)
export PATH := /opt/swift/usr/bin:$(PATH)
SWIFT ?= swift

.PHONY: all deps build release test demo fuzz clean

all: build

deps:
	@scripts/install-deps.sh

build:
	$(SWIFT) build

release:
	$(SWIFT) build -c release --product podtap-flows

test: deps
	$(SWIFT) build --build-tests
	SWIFT=$(SWIFT) scripts/run-tests.sh

demo: release
	@mkdir -p .build
	@gunzip -c Demo/pod-traffic.pcap.gz > .build/demo.pcap
	.build/release/podtap-flows --format table --sort bytes --limit 25 --snapshot Demo/cluster-snapshot.json .build/demo.pcap

# Separate package (Fuzz/Package.swift), separate scratch path (Fuzz/.build): `make test` is unaffected.
FUZZ_SECONDS ?= 600
FUZZ_JOBS ?= 1
fuzz:
	Fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_JOBS)

clean:
	rm -rf .build
