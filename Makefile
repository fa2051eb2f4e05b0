# spectra-sentinel build.
#
# Every src/*.c except main.c goes into one static library that the binary,
# the unit tests, the fuzz targets and the benchmarks link against, so a new
# module or test needs no change here:
#   src/NAME.c + include/NAME.h        a module
#   tests/unit/test_NAME.c             a cmocka unit test binary
#   tests/fuzz/fuzz_NAME.c             a libFuzzer target (corpus in tests/fuzz/corpus/NAME)
#   tests/integration/test_NAME.sh     an integration test (gets BIN, BUILD, TOP)
#
# `make asan` builds everything again in build-asan/ with ASan+UBSan and runs
# the whole test suite there.

VERSION    := 0.1.0
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR    ?= $(PREFIX)/lib/systemd/system
DESTDIR    ?=

CC       ?= cc
BUILD    ?= build
SAN      ?=
PKGS     := libcurl jansson openssl libuv yaml-0.1 zlib expat libdeflate libmicrohttpd
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
ifeq ($(PKG_LIBS),)
PKG_LIBS := -lcurl -ljansson -lssl -lcrypto -luv -lyaml -lz -lexpat -ldeflate -lmicrohttpd
endif

WARN     := -Wall -Wextra -Werror -Wstrict-prototypes -Wmissing-prototypes \
            -Wshadow -Wformat=2 -Wno-format-nonliteral
OPT      ?= -O2 -g
CPPFLAGS += -D_GNU_SOURCE -DSS_VERSION='"$(VERSION)"' -Iinclude
CFLAGS   += -std=c11 $(WARN) $(OPT) -fno-strict-aliasing $(PKG_CFLAGS)
LDLIBS   += $(PKG_LIBS) -lpthread -lm

ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-sanitize-recover=all \
           -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif

LIB_SRC  := $(filter-out src/main.c,$(wildcard src/*.c))
LIB_OBJ  := $(LIB_SRC:src/%.c=$(BUILD)/obj/%.o)
LIB      := $(BUILD)/libspectra.a
BIN      := $(BUILD)/spectra-sentinel
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_SECONDS ?= 60

.PHONY: all deps test test-unit test-integration asan valgrind fuzz fuzz-build \
        bench demo install clean unit-bins analyze test-container soak

all: $(BIN) spectra-sentinel

spectra-sentinel: $(BIN)
	@ln -sf $(BIN) $@

$(BUILD)/obj/%.o: src/%.c $(wildcard include/*.h) | $(BUILD)/obj
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN): src/main.c $(LIB) $(wildcard include/*.h)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ src/main.c $(LIB) $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(LIB) $(wildcard include/*.h tests/unit/*.h) | $(BUILD)/tests
	$(CC) $(CPPFLAGS) -Itests/unit $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS) -lcmocka

$(BUILD)/obj $(BUILD)/tests $(BUILD)/fuzz:
	@mkdir -p $@

deps:
	@bash .ci/deps.sh

unit-bins: $(UNIT_BIN)

# Each cmocka binary prints its own summary; run-unit.sh adds the total.
test-unit: $(BIN) $(UNIT_BIN)
	@bash tests/run-unit.sh $(BUILD) $(UNIT_BIN)

test-integration: $(BIN)
	@BUILD=$(BUILD) bash tests/run-integration.sh

test: test-unit test-integration

asan:
	@$(MAKE) --no-print-directory BUILD=build-asan SAN=1 OPT="-O1 -g" test

# Unit tests under valgrind, then the daemon end to end under valgrind.
valgrind: $(BIN) $(UNIT_BIN)
	@VALGRIND=1 bash tests/run-unit.sh $(BUILD) $(UNIT_BIN)
	@TOP=$(CURDIR) BUILD=$(CURDIR)/$(BUILD) BIN=$(CURDIR)/$(BIN) \
	  bash tests/integration/test_daemon_valgrind.sh

# libFuzzer targets: the library is compiled once with clang's coverage
# and sanitizer instrumentation (fuzzer-no-link), then each target links it.
FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS := -std=c11 -g -O1 $(FUZZ_SAN) -Wall -Wextra -Werror $(PKG_CFLAGS)
FUZZ_OBJ    := $(LIB_SRC:src/%.c=$(BUILD)/fuzz-obj/%.o)
$(BUILD)/fuzz-obj/%.o: src/%.c $(wildcard include/*.h) | $(BUILD)/fuzz-obj
	clang $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<
$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJ) | $(BUILD)/fuzz
	clang $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJ) \
	  $(LDLIBS)
$(BUILD)/fuzz-obj:
	@mkdir -p $@

fuzz-build: $(FUZZ_BIN)

fuzz: $(FUZZ_BIN)
	@FUZZ_SECONDS=$(FUZZ_SECONDS) bash tests/run-fuzz.sh $(FUZZ_BIN)

analyze:
	@for f in $(LIB_SRC) src/main.c; do \
	  gcc $(CPPFLAGS) $(CFLAGS) -fanalyzer -c -o /dev/null $$f || exit 1; done

# Builds the container image with podman and runs it against Azurite and
# the Logs Ingestion fake (needs podman, runc and debootstrap; slow, not in
# CI).
test-container: $(BIN)
	@TOP=$(CURDIR) bash tests/container/test_container.sh

# The soak test (SOAK_MINUTES, default 30): continuous uploads, random
# faults, kill -9 every few minutes; checks delivery and flat resources.
soak: $(BIN)
	@TOP=$(CURDIR) BUILD=$(CURDIR)/$(BUILD) BIN=$(CURDIR)/$(BIN) \
	  bash tests/soak/soak.sh

bench: $(BIN)
	@BUILD=$(BUILD) bash tests/bench/run.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) bash tests/tools/demo.sh

install: $(BIN)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SYSCONFDIR)/spectra-sentinel \
	  $(DESTDIR)$(UNITDIR)
	install -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/spectra-sentinel
	install -m 0640 conf/spectra-sentinel.yaml \
	  $(DESTDIR)$(SYSCONFDIR)/spectra-sentinel/spectra-sentinel.yaml.example
	if [ -f systemd/spectra-sentinel.service ]; then \
	  sed 's|@BINDIR@|$(BINDIR)|g' systemd/spectra-sentinel.service \
	    > $(DESTDIR)$(UNITDIR)/spectra-sentinel.service; fi
	if [ -f docs/spectra-sentinel.8 ]; then \
	  install -d $(DESTDIR)$(MANDIR)/man8 && \
	  install -m 0644 docs/spectra-sentinel.8 $(DESTDIR)$(MANDIR)/man8/; fi

clean:
	rm -rf build build-asan spectra-sentinel
