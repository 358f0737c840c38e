# rmad: returns-receiving daemon. Hand-written on purpose: every target is readable here.
#
#   make            build build/rmad and build/rmactl (packages must be installed)
#   make run        install missing packages (as root), build, run on the default config
#   make check      install missing packages (as root), build, run every test
#   make asan       the tests under ASan/UBSan (same as SANITIZE=1 make check)
#   make valgrind   the unit tests under valgrind
#   make bench      speed and memory measurements (never asserted by tests)
#   make fuzz       libFuzzer (clang) on every parser, FUZZ_SECONDS (60) per target
#   make reliability  the crash harness (RELIABILITY_KILLS=50 SIGKILLs) and the fault runs; table in README

CC      ?= cc
CFLAGS  ?= -O2 -g
PREFIX  ?= /usr/local
# The installed pages; a config without web_root serves them from here.
WEB_ROOT ?= $(PREFIX)/share/rmad/web

ifeq ($(SANITIZE),1)
B       ?= build-asan
SAN      = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else ifeq ($(SANITIZE),fuzz)
# The library instrumented for libFuzzer's coverage; each target links the fuzzer.
B       ?= build-fuzz
CC       = clang
SAN      = -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
           -fno-sanitize-recover=undefined
else
B       ?= build
SAN      =
endif

# libzint and libcups ship no pkg-config file: their headers are checked directly.
PKGS     = yaml-0.1 jansson sqlite3 libzmq libusb-1.0 libserialport cairo fontconfig \
           libmicrohttpd
TEST_PKGS = umockdev-1.0
PKG_OK  := $(shell pkg-config --exists $(PKGS) && \
                   printf '\043include <zint.h>\n\043include <cups/cups.h>\n' | \
                   $(CC) -E -x c - >/dev/null 2>&1 && echo yes)
ifeq ($(PKG_OK),yes)
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS)) -lzint -lcups
TEST_CFLAGS := $(shell pkg-config --cflags $(TEST_PKGS) 2>/dev/null)
TEST_LIBS   := $(shell pkg-config --libs $(TEST_PKGS) 2>/dev/null)
endif

WARN     = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wformat=2 -Wvla
ALL_CFLAGS = -std=gnu11 -D_GNU_SOURCE -DCONFIG_WEB_ROOT='"$(WEB_ROOT)"' $(WARN) $(CFLAGS) $(SAN) -I. $(PKG_CFLAGS) -MMD -MP
ALL_LDFLAGS = $(LDFLAGS) $(SAN)
LIBS     = $(PKG_LIBS) -lm

# Everything but the two mains is one static library, so rmad, rmactl and the tests
# share one copy of each module (in particular one policy-evaluation code path).
LIB_SRC  = $(wildcard core/*.c policy/*.c daemon/*.c drivers/*.c labels/*.c proto/*.c db/*.c)
LIB_SRC := $(filter-out daemon/rmad.c,$(LIB_SRC))
CLI_SRC  = $(wildcard cli/*.c)
TEST_SRC = $(wildcard tests/*.c)

LIB_OBJ  = $(LIB_SRC:%.c=$(B)/%.o)
CLI_OBJ  = $(CLI_SRC:%.c=$(B)/%.o)
TEST_OBJ = $(TEST_SRC:%.c=$(B)/%.o)
RMAD_OBJ = $(if $(wildcard daemon/rmad.c),$(B)/daemon/rmad.o)

BINS     = $(B)/rmactl $(if $(RMAD_OBJ),$(B)/rmad)

.PHONY: all deps check-deps run check test asan valgrind bench clean install fuzz fuzz-targets \
        reliability

all: check-deps $(BINS)

check-deps:
ifneq ($(PKG_OK),yes)
	@echo "rmad: build packages missing; run 'scripts/deps.sh' (as root it installs them)" >&2
	@scripts/deps.sh
	@false
endif

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(B)/librmad.a: $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(B)/rmactl: $(CLI_OBJ) $(B)/librmad.a
	$(CC) $(ALL_LDFLAGS) -o $@ $(CLI_OBJ) $(B)/librmad.a $(LIBS)

$(B)/rmad: $(RMAD_OBJ) $(B)/librmad.a
	$(CC) $(ALL_LDFLAGS) -o $@ $(RMAD_OBJ) $(B)/librmad.a $(LIBS)

# Tests may drive umockdev's testbed API (hotplug) when run under its preload.
$(TEST_OBJ): ALL_CFLAGS += $(TEST_CFLAGS)

$(B)/test_runner: $(TEST_OBJ) $(B)/librmad.a | $(B)/tiocm-shim.so $(B)/fault-shim.so
	$(CC) $(ALL_LDFLAGS) -o $@ $(TEST_OBJ) $(B)/librmad.a $(LIBS) $(TEST_LIBS) -lcunit

# Preloaded by tests/test_serial.c so libserialport can open umockdev's pty-backed
# ttys. Never sanitized: it is loaded ahead of the ASan runtime.
$(B)/tiocm-shim.so: tests/shim/tiocm-shim.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -fPIC -shared -o $@ $< -ldl

# Preloaded by tests/reliability/faults.py: a database disk that turns read-only or
# full under a running rmad. Never sanitized, like the tiocm shim.
$(B)/fault-shim.so: tests/shim/fault-shim.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -fPIC -shared -o $@ $< -ldl

# The two set-up commands of the README. Both install what is missing first, then
# re-enter make so that pkg-config sees the freshly installed packages.
deps:
	@scripts/deps.sh --check

run: 
	@scripts/deps.sh
	@$(MAKE) --no-print-directory all
	scripts/run.sh $(B)

check: deps
	@$(MAKE) --no-print-directory test

test: all $(B)/test_runner
	@scripts/check-layers.sh
	RMAD_BUILD=$(B) $(B)/test_runner

asan:
	@$(MAKE) --no-print-directory SANITIZE=1 check

valgrind: all $(B)/test_runner
	RMAD_BUILD=$(B) RMAD_VALGRIND=1 valgrind --error-exitcode=3 --leak-check=full \
	    --errors-for-leak-kinds=definite $(B)/test_runner

# Fuzzing: one libFuzzer binary per parser rmad exposes to untrusted input
# (tests/fuzz/fuzz_<target>.c), started from the seeds checked in under
# tests/fuzz/corpus/<target>; new inputs collect in $(B)/corpus, crashes in
# $(B)/crashes. Bounded: FUZZ_SECONDS per target. A crash found becomes a seed and a
# regression test.
FUZZ_TARGETS = scan hidpos keymap policy case control csv
FUZZ_SECONDS ?= 60
FUZZ_BINS = $(FUZZ_TARGETS:%=$(B)/fuzz_%)

fuzz:
	@scripts/deps.sh --fuzz
	@$(MAKE) --no-print-directory SANITIZE=fuzz fuzz-targets
	@set -e; for t in $(FUZZ_TARGETS); do \
	    mkdir -p build-fuzz/corpus/$$t build-fuzz/crashes; \
	    echo "fuzz $$t: $(FUZZ_SECONDS) s"; \
	    build-fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	        -artifact_prefix=build-fuzz/crashes/$$t- build-fuzz/corpus/$$t \
	        tests/fuzz/corpus/$$t 2>&1 | grep -E '^(stat::number_of_executed_units|==|SUMMARY)' \
	        || true; \
	done; \
	if ls build-fuzz/crashes/* >/dev/null 2>&1; then \
	    echo "fuzz: crashes in build-fuzz/crashes:"; ls build-fuzz/crashes; exit 1; fi; \
	echo "fuzz: no crash in $(words $(FUZZ_TARGETS)) targets"

fuzz-targets: check-deps $(FUZZ_BINS)

$(B)/fuzz_%: tests/fuzz/fuzz_%.c $(B)/librmad.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer -o $@ $< $(B)/librmad.a $(LIBS)

# SIGKILLs at random moments while stations scan and labels print: every acknowledged
# receipt stored once, events gapless, labels printed once. Then the fault runs
# (tests/reliability/faults.py): locked database, full and read-only disk, cupsd killed,
# a stuck subscriber, a flood, idle connections, a big import, control peers. A few
# minutes; one table goes to the README. make check runs short versions of both.
reliability: deps all $(B)/fault-shim.so
	RELIABILITY_KILLS=$${RELIABILITY_KILLS:-50} /usr/bin/python3 tests/reliability/reliability.py \
	    $(B) --readme README.md

bench: all
	scripts/bench.sh $(B)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/rmad/policies
	install -m 0755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 policies/*.yaml $(DESTDIR)$(PREFIX)/share/rmad/policies/
	install -d $(DESTDIR)$(WEB_ROOT)
	install -m 0644 web/*.html web/*.css web/*.js $(DESTDIR)$(WEB_ROOT)/
	install -d $(DESTDIR)/lib/systemd/system
	install -m 0644 systemd/rmad.service $(DESTDIR)/lib/systemd/system/

clean:
	rm -rf build build-asan

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(RMAD_OBJ:.o=.d)
