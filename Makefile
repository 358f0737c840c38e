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
# Where `make install` puts things (DESTDIR is prepended to each). rmad is a system
# service: its config lives in /etc whatever the PREFIX, the unit, sysusers, tmpfiles
# and udev files where systemd and udev look (their pkg-config files say where).
BINDIR  ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share
MANDIR  ?= $(DATADIR)/man
SYSCONFDIR ?= /etc
pkgvar   = $(shell pkg-config --variable=$(2) $(1) 2>/dev/null)
UNITDIR     ?= $(or $(call pkgvar,systemd,systemdsystemunitdir),/lib/systemd/system)
SYSUSERSDIR ?= $(or $(call pkgvar,systemd,sysusersdir),/usr/lib/sysusers.d)
TMPFILESDIR ?= $(or $(call pkgvar,systemd,tmpfilesdir),/usr/lib/tmpfiles.d)
UDEVDIR     ?= $(or $(call pkgvar,udev,udevdir),/lib/udev)
# The installed pages; a config without web_root serves them from here.
WEB_ROOT ?= $(PREFIX)/share/rmad/web
# Shipped vendor policies, and the directory whose files replace same-named ones.
POLICY_DIR       ?= $(DATADIR)/rmad/policies
LOCAL_POLICY_DIR ?= $(SYSCONFDIR)/rmad/policies

# One version: the VERSION file, and `git describe` when built from a checkout.
VERSION  := $(shell cat VERSION)
GIT_DESC := $(shell git describe --always --dirty 2>/dev/null)
FULL_VERSION := $(VERSION)$(if $(GIT_DESC), (git $(GIT_DESC)))

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
           libmicrohttpd xkbcommon libsystemd libnats
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

# -Werror in the project's own builds (make check, run, asan, valgrind, CI), never for
# a packager's `make && make install` with another compiler's new warnings.
WARN     = -Wall -Wextra $(WERROR) -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wformat=2 -Wvla
DEV_GOALS = check test run asan valgrind reliability bench fuzz fuzz-targets
ifneq ($(filter $(DEV_GOALS),$(MAKECMDGOALS)),)
WERROR  ?= -Werror
endif
WERROR  ?=
ALL_CFLAGS = -std=gnu11 -D_GNU_SOURCE -DCONFIG_WEB_ROOT='"$(WEB_ROOT)"' $(WARN) $(CPPFLAGS) \
             $(CFLAGS) $(SAN) -I. $(PKG_CFLAGS) -MMD -MP
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

.PHONY: all deps check-deps run check test asan valgrind bench clean install uninstall fuzz \
        fuzz-targets reliability

all: check-deps $(BINS)

check-deps:
ifneq ($(PKG_OK),yes)
	@echo "rmad: build packages missing; run 'scripts/deps.sh' (as root it installs them)" >&2
	@scripts/deps.sh
	@false
endif

# Objects are rebuilt when the flags change (make, then make check with -Werror), and
# core/build.o when the version or the paths it records change: each stamp file is
# rewritten only when what it records differs.
BUILD_FACTS = -DBUILD_VERSION='"$(FULL_VERSION)"' -DBUILD_SOURCE_ROOT='"$(CURDIR)"' \
              -DBUILD_INSTALLED_CONFIG='"$(SYSCONFDIR)/rmad/rmad.conf"'
same  = $(and $(findstring $(1),$(2)),$(findstring $(2),$(1)))
stamp = $(if $(call same,$(strip $(2)),$(file <$(1))),,\
             $(shell mkdir -p $(dir $(1)))$(file >$(1),$(strip $(2))))
$(call stamp,$(B)/cflags.stamp,$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS))
$(call stamp,$(B)/build.stamp,$(BUILD_FACTS))

$(B)/%.o: %.c $(B)/cflags.stamp
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(B)/cflags.stamp $(B)/build.stamp: ;
$(B)/core/build.o: ALL_CFLAGS += $(BUILD_FACTS)
$(B)/core/build.o: $(B)/build.stamp

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
$(B)/tiocm-shim.so: tests/shim/tiocm-shim.c $(B)/cflags.stamp
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
	@$(MAKE) --no-print-directory WERROR=$(WERROR) all
	scripts/run.sh $(B)

check: deps
	@$(MAKE) --no-print-directory WERROR=$(WERROR) test

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

bench: all $(B)/bench_floor
	scripts/bench.sh $(B)

# The floor `make bench` measures rmad against (tests/bench/floor.c): one durable
# commit per scan behind the same TCP-in / ZeroMQ-out wire.
$(B)/bench_floor: tests/bench/floor.c $(B)/cflags.stamp
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(ALL_LDFLAGS) $(LIBS)

# ---- install ----------------------------------------------------------------------
# make install [PREFIX=/usr] [DESTDIR=/tmp/pkg] [SYSCONFDIR=/etc] [UNITDIR=...]: the
# programs, policies, web pages, man pages, the config (never overwritten: a changed
# default goes next to it as rmad.conf.dist), the unit, sysusers, tmpfiles and udev
# files. Into the live system (no DESTDIR, as root) it then creates the user, the
# directories and reloads udev and systemd, where those tools run.
LOCALSTATEDIR ?= /var
RUNSTATEDIR   ?= /run
SUBST = sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
            -e 's|@LOCALSTATEDIR@|$(LOCALSTATEDIR)|g' -e 's|@RUNSTATEDIR@|$(RUNSTATEDIR)|g' \
            -e 's|@POLICY_DIR@|$(POLICY_DIR)|g' -e 's|@LOCAL_POLICY_DIR@|$(LOCAL_POLICY_DIR)|g' \
            -e 's|@WEB_ROOT@|$(WEB_ROOT)|g' -e 's|@VERSION@|$(VERSION)|g'
GENERATED = $(B)/dist/rmad.service $(B)/dist/rmad.tmpfiles $(B)/dist/rmad.conf
MANPAGES  = man/rmad.8 man/rmactl.1 man/rmad.conf.5
INSTALLED_CONF = $(DESTDIR)$(SYSCONFDIR)/rmad/rmad.conf

$(call stamp,$(B)/dist.stamp,$(SUBST))
$(B)/dist.stamp: ;
$(B)/dist/rmad.service: systemd/rmad.service.in $(B)/dist.stamp
$(B)/dist/rmad.tmpfiles: systemd/rmad.tmpfiles.in $(B)/dist.stamp
$(B)/dist/rmad.conf: etc/rmad.conf.in $(B)/dist.stamp
$(GENERATED):
	@mkdir -p $(dir $@)
	$(SUBST) $< > $@.tmp && mv $@.tmp $@

install: all $(GENERATED)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(POLICY_DIR) $(DESTDIR)$(WEB_ROOT) \
	    $(DESTDIR)$(SYSCONFDIR)/rmad $(DESTDIR)$(LOCAL_POLICY_DIR) $(DESTDIR)$(UNITDIR) \
	    $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR) $(DESTDIR)$(UDEVDIR)/rules.d \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -m 0755 $(BINS) $(DESTDIR)$(BINDIR)/
	install -m 0644 policies/*.yaml $(DESTDIR)$(POLICY_DIR)/
	install -m 0644 web/*.html web/*.css web/*.js $(DESTDIR)$(WEB_ROOT)/
	@if [ -e $(INSTALLED_CONF) ] && ! cmp -s $(B)/dist/rmad.conf $(INSTALLED_CONF); then \
	    echo "install: $(INSTALLED_CONF) kept; the new default is $(INSTALLED_CONF).dist"; \
	    install -m 0644 $(B)/dist/rmad.conf $(INSTALLED_CONF).dist; \
	else \
	    echo "install -m 0644 $(B)/dist/rmad.conf $(INSTALLED_CONF)"; \
	    install -m 0644 $(B)/dist/rmad.conf $(INSTALLED_CONF); \
	fi
	install -m 0644 $(B)/dist/rmad.service $(DESTDIR)$(UNITDIR)/rmad.service
	install -m 0644 systemd/rmad.sysusers $(DESTDIR)$(SYSUSERSDIR)/rmad.conf
	install -m 0644 $(B)/dist/rmad.tmpfiles $(DESTDIR)$(TMPFILESDIR)/rmad.conf
	install -m 0644 udev/70-rmad-scanners.rules $(DESTDIR)$(UDEVDIR)/rules.d/
	install -m 0644 man/rmactl.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 man/rmad.conf.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 man/rmad.8 $(DESTDIR)$(MANDIR)/man8/
ifeq ($(DESTDIR),)
	@scripts/post-install.sh "$(SYSUSERSDIR)/rmad.conf" "$(TMPFILESDIR)/rmad.conf"
endif

# Everything install put there, but the config when it was edited (and the database,
# which install never made): the data of a dock outlives its software.
uninstall: $(B)/dist/rmad.conf
	rm -f $(DESTDIR)$(BINDIR)/rmad $(DESTDIR)$(BINDIR)/rmactl
	rm -f $(addprefix $(DESTDIR)$(POLICY_DIR)/,$(notdir $(wildcard policies/*.yaml)))
	rm -f $(addprefix $(DESTDIR)$(WEB_ROOT)/,$(notdir $(wildcard web/*.html web/*.css web/*.js)))
	-rmdir $(DESTDIR)$(POLICY_DIR) $(DESTDIR)$(WEB_ROOT) $(DESTDIR)$(DATADIR)/rmad 2>/dev/null
	rm -f $(DESTDIR)$(UNITDIR)/rmad.service $(DESTDIR)$(SYSUSERSDIR)/rmad.conf \
	    $(DESTDIR)$(TMPFILESDIR)/rmad.conf $(DESTDIR)$(UDEVDIR)/rules.d/70-rmad-scanners.rules \
	    $(DESTDIR)$(MANDIR)/man1/rmactl.1 $(DESTDIR)$(MANDIR)/man5/rmad.conf.5 \
	    $(DESTDIR)$(MANDIR)/man8/rmad.8 $(INSTALLED_CONF).dist
	@if [ -e $(INSTALLED_CONF) ] && ! cmp -s $(B)/dist/rmad.conf $(INSTALLED_CONF); then \
	    echo "uninstall: $(INSTALLED_CONF) was edited: kept"; \
	else rm -f $(INSTALLED_CONF); fi
	-rmdir $(DESTDIR)$(LOCAL_POLICY_DIR) $(DESTDIR)$(SYSCONFDIR)/rmad 2>/dev/null

clean:
	rm -rf build build-asan

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(RMAD_OBJ:.o=.d)
