# qmd build, test and install targets. See README.md.
export PATH := /usr/local/go/bin:$(PATH)

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X qmd/daemon.Version=$(VERSION) -X qmd/ctl/cli.Version=$(VERSION)
PREFIX  ?= /usr/local
DESTDIR ?=

.PHONY: all build test test-unit demo deps install lint testenv bench fuzz golden clean validate

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/qmd ./daemon/cmd/qmd
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/qmctl ./ctl/cmd/qmctl

# Installs and starts what the integration tests need (as root, idempotent).
testenv:
	.ci/testenv

# Everything, integration tests included: they run against the real NWChem and Open Babel.
test: testenv build lint
	$(GO) test -count=1 -timeout 30m ./...

# Unit tests only (integration tests skip without their services unless CI is set).
test-unit:
	$(GO) test -short ./...

# What qmd needs to run calculations (NWChem, Open Babel, Open MPI), nothing more.
deps:
	.ci/deps

demo: deps build
	.ci/demo

# Computed shifts against experiment (docs/validation.md): each shipped set's default
# subset; VALIDATE_ARGS=--all runs every molecule, resuming from results already computed.
validate: deps build
	.ci/validate

lint:
	@out=$$(gofmt -l daemon scheduler templates ctl); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Long fuzz runs, not in CI; make test replays the kept corpus in testdata/fuzz.
FUZZ_TIME ?= 10m
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZ_TIME) ./daemon/chem
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZ_TIME) ./daemon/nwchem
	$(GO) test -run '^$$' -fuzz '^FuzzParseSacct$$' -fuzztime $(FUZZ_TIME) ./scheduler/slurm
	$(GO) test -run '^$$' -fuzz '^FuzzParseSqueue$$' -fuzztime $(FUZZ_TIME) ./scheduler/slurm
	$(GO) test -run '^$$' -fuzz '^FuzzParsePBSJSON$$' -fuzztime $(FUZZ_TIME) \
		-fuzzminimizetime 10s ./scheduler/pbs
	$(GO) test -run '^$$' -fuzz '^FuzzParseTorqueText$$' -fuzztime $(FUZZ_TIME) \
		-fuzzminimizetime 10s ./scheduler/torque
	$(GO) test -run '^$$' -fuzz '^FuzzQuote$$' -fuzztime $(FUZZ_TIME) ./scheduler/runner

# Packages whose tests compare against golden files in testdata/ and take -update.
GOLDEN_PKGS := $(shell grep -rl --include='*_test.go' '"update", false' daemon scheduler \
	templates ctl | xargs -n1 dirname | sort -u | sed 's#^#./#')

golden:
	$(GO) test $(GOLDEN_PKGS) -run . -update

install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/etc/qmd $(DESTDIR)$(PREFIX)/share/doc/qmd
	install -m 0755 bin/qmd bin/qmctl $(DESTDIR)$(PREFIX)/bin/
	test -e $(DESTDIR)/etc/qmd/qmd.toml || install -m 0644 etc/qmd.toml $(DESTDIR)/etc/qmd/qmd.toml
	install -m 0644 etc/qmd.toml $(DESTDIR)$(PREFIX)/share/doc/qmd/qmd.toml.example
	install -d $(DESTDIR)/lib/systemd/system $(DESTDIR)/usr/lib/sysusers.d
	sed 's#/usr/local/bin/#$(PREFIX)/bin/#g' systemd/qmd.service \
		> $(DESTDIR)/lib/systemd/system/qmd.service
	chmod 0644 $(DESTDIR)/lib/systemd/system/qmd.service
	install -m 0644 systemd/qmd.sysusers $(DESTDIR)/usr/lib/sysusers.d/qmd.conf
	install -d $(DESTDIR)$(PREFIX)/share/qmd/grafana $(DESTDIR)$(PREFIX)/share/qmd/prometheus
	install -m 0644 etc/grafana/qmd.json $(DESTDIR)$(PREFIX)/share/qmd/grafana/qmd.json
	install -m 0644 etc/prometheus/qmd-rules.yml etc/prometheus/qmd-rules.test.yml \
		$(DESTDIR)$(PREFIX)/share/qmd/prometheus/
	install -m 0644 README.md docs/*.md $(DESTDIR)$(PREFIX)/share/doc/qmd/
	install -d $(DESTDIR)$(PREFIX)/share/qmd/validation
	install -m 0644 etc/validation/*.json $(DESTDIR)$(PREFIX)/share/qmd/validation/

clean:
	rm -rf bin
