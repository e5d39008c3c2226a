# txagg — the one Makefile.
#
#   make                 bin/importer bin/aggregator bin/persistor bin/api (+ bin/txgen)
#   make test            deps if missing, build, start redis + MongoDB-wire, run every test
#   make test SANITIZE=1 the same with AddressSanitizer + UBSan (objects under build/asan)
#   make test T=money    only the tests whose file name contains "money"
#   make deps            install what a fresh Debian bookworm machine lacks
#   make run             the whole system on this machine, no containers
#   V=1                  print every command (quiet by default)
#   make bench           throughput figures (ingest, API)
#   make fuzz            a bounded libFuzzer run of the query parser
#   make test-compose    the docker-compose stack, brought up for real
#   make test-k8s        the Kubernetes manifests on a real single-node cluster
#
# Sources are found by wildcard: a new module is a new .c file in its
# directory, a new Lua script a new .lua file (embedded at build time as
# `const char lua_<dir>_<name>[]`, see scripts/embed.sh), a new test a new
# tests/{unit,integration}/test_*.c or tests/e2e/*.sh, a static file served by
# a binary a file under <dir>/assets/ (embedded as `const char
# asset_<dir>_<name_ext>[]`).  Nobody edits this file to add one.

VERSION  := $(shell cat VERSION)
CC       := gcc
SANITIZE ?= 0

ifeq ($(SANITIZE),1)
BUILD    := build/asan
BINDIR   := build/asan/bin
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD    := build/release
BINDIR   := bin
SANFLAGS :=
endif

PKGS     := hiredis libmongoc-1.0 libbson-1.0 libcjson
ifneq ($(filter-out deps clean run test test-compose test-k8s bench fuzz,$(or $(MAKECMDGOALS),all)),)
ifneq ($(shell pkg-config --exists $(PKGS) && echo yes),yes)
$(error missing build dependencies ($(PKGS) via pkg-config): run `make deps` first)
endif
endif
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CPPFLAGS := -D_GNU_SOURCE -DTXAGG_VERSION='"$(VERSION)"' -Icommon -I$(BUILD)/gen $(PKG_CFLAGS)
CFLAGS   := -std=c11 -Wall -Wextra -Werror -O2 -g -pthread -MMD -MP $(SANFLAGS)
LDFLAGS  := -pthread $(SANFLAGS)
LDLIBS   := $(PKG_LIBS) -lcivetweb -lcsv -lm

# Quiet by default: one short line per step (none under make -s); V=1 prints
# every command instead.
ifeq ($(V),1)
Q   :=
msg  = @:
else
Q   := @
ifneq ($(findstring s,$(firstword -$(MAKEFLAGS))),)
msg  = @:
else
msg  = @printf '  %-6s %s\n' '$(1)' '$(2)'
endif
endif

SERVICES := importer aggregator persistor api
.DEFAULT_GOAL := all

# --- objects ------------------------------------------------------------------
obj     = $(patsubst %.c,$(BUILD)/%.o,$(1))
luaobj  = $(patsubst %.lua,$(BUILD)/gen/%.lua.o,$(1))
assetobj = $(patsubst %,$(BUILD)/gen/%.o,$(1))

COMMON_OBJ := $(call obj,$(wildcard common/*.c)) $(call luaobj,$(wildcard common/*.lua))
LIBTXAGG   := $(BUILD)/libtxagg.a

# An archive $(1) of the objects $(2), rebuilt from scratch whenever that
# list changes (the .objs file), so a deleted source never lingers in a binary.
define archive_rule
$(1): $(2) $(1:.a=.objs)
	$$(call msg,AR,$$@)
	$$(Q)rm -f $$@
	$$(Q)$$(AR) rcs $$@ $(2)
$(1:.a=.objs): FORCE
	@mkdir -p $$(@D)
	@echo '$(2)' | cmp -s - $$@ || echo '$(2)' > $$@
endef

# Each service: main.o plus a static library of its modules, so the tests can
# link the modules without main().
define service_rules
$(1)_MODS := $$(call obj,$$(filter-out $(1)/main.c,$$(wildcard $(1)/*.c))) $$(call luaobj,$$(wildcard $(1)/*.lua)) \
    $$(call assetobj,$$(wildcard $(1)/assets/*))
$$(eval $$(call archive_rule,$(BUILD)/lib$(1).a,$$($(1)_MODS)))
$(BINDIR)/$(1): $(BUILD)/$(1)/main.o $(BUILD)/lib$(1).a $(LIBTXAGG)
	@mkdir -p $$(@D)
	$$(call msg,LD,$$@)
	$$(Q)$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach s,$(SERVICES),$(eval $(call service_rules,$(s))))

SERVICE_LIBS := $(foreach s,$(SERVICES),$(BUILD)/lib$(s).a)
BINARIES     := $(foreach s,$(SERVICES),$(BINDIR)/$(s)) $(BINDIR)/txgen

# --- the test build -----------------------------------------------------------
# Test-only code (fault hooks, test seams, accessors only tests call) sits in
# `#ifdef TXAGG_TESTING`, which only this build defines: a module whose .c
# mentions it is compiled a second time, with -DTXAGG_TESTING, under
# $(BUILD)/test-objs, and replaces its release object in the archives the
# tests link.  So no binary under bin/ holds any of it, and every other object
# is shared by both builds (headers may guard declarations only, never a
# type's layout).
TESTING_SRC := $(shell grep -l TXAGG_TESTING common/*.c $(addsuffix /*.c,$(SERVICES)) 2>/dev/null)
TESTING_OBJ := $(call obj,$(TESTING_SRC))
testing     = $(foreach o,$(1),$(if $(filter $(o),$(TESTING_OBJ)),$(o:$(BUILD)/%=$(BUILD)/test-objs/%),$(o)))
TEST_LIBTXAGG := $(BUILD)/test-objs/libtxagg.a
TEST_SERVICE_LIBS := $(foreach s,$(SERVICES),$(BUILD)/test-objs/lib$(s).a)

$(eval $(call archive_rule,$(TEST_LIBTXAGG),$(call testing,$(COMMON_OBJ))))
$(foreach s,$(SERVICES),$(eval $(call archive_rule,$(BUILD)/test-objs/lib$(s).a,$(call testing,$($(s)_MODS)))))

$(BUILD)/test-objs/%.o: %.c
	@mkdir -p $(@D)
	$(call msg,CC,$< (test build))
	$(Q)$(CC) $(CPPFLAGS) -DTXAGG_TESTING $(CFLAGS) -c -o $@ $<

# --- tests --------------------------------------------------------------------
TESTLIB_OBJ := $(call obj,$(wildcard tests/lib/*.c))
TESTLIB     := $(BUILD)/libtestsupport.a
TEST_SRC    := $(wildcard tests/unit/test_*.c tests/integration/test_*.c)
TEST_BINS   := $(patsubst %.c,$(BUILD)/%,$(TEST_SRC))
TOOL_SRC    := $(filter-out tests/tools/txgen.c,$(wildcard tests/tools/*.c))
TOOL_BINS   := $(patsubst tests/tools/%.c,$(BUILD)/tools/%,$(TOOL_SRC))

.PHONY: all build-tests test deps run bench fuzz test-compose test-k8s clean FORCE
# Generated .c files and tool objects are intermediates make would delete
# (and then rebuild every time); keep them.
.SECONDARY:
all: $(BINARIES)

$(eval $(call archive_rule,$(LIBTXAGG),$(COMMON_OBJ)))
FORCE:

$(TESTLIB): $(TESTLIB_OBJ)
	@mkdir -p $(@D)
	$(call msg,AR,$@)
	$(Q)$(AR) rcs $@ $^

# A test links every service's module archive of the test build in one
# group: it pulls in only the modules it calls, whichever service they
# belong to.
$(BUILD)/tests/%: tests/%.c $(TESTLIB) $(TEST_SERVICE_LIBS) $(TEST_LIBTXAGG)
	@mkdir -p $(@D)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) -DTXAGG_TESTING -I. -Itests/lib $(CFLAGS) $(LDFLAGS) -o $@ $< $(TESTLIB) \
	    -Wl,--start-group $(TEST_SERVICE_LIBS) $(TEST_LIBTXAGG) -Wl,--end-group $(LDLIBS) -lcmocka

$(BUILD)/tests/lib/%.o: tests/lib/%.c
	@mkdir -p $(@D)
	$(call msg,CC,$<)
	$(Q)$(CC) $(CPPFLAGS) -DTXAGG_TESTING $(CFLAGS) -c -o $@ $<

$(BINDIR)/txgen: $(BUILD)/tests/tools/txgen.o $(LIBTXAGG)
	@mkdir -p $(@D)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The test tools are test code: compiled with TXAGG_TESTING and linked with
# the test build of common/ (its test-only functions).  txgen is not: it ships.
$(patsubst %.c,$(BUILD)/%.o,$(TOOL_SRC)): CPPFLAGS += -DTXAGG_TESTING
$(BUILD)/tools/%: $(BUILD)/tests/tools/%.o $(TEST_LIBTXAGG)
	@mkdir -p $(@D)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

build-tests: all $(TEST_BINS) $(TOOL_BINS)

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(call msg,CC,$<)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/gen/%.lua.c: %.lua scripts/embed.sh
	@mkdir -p $(@D)
	$(call msg,EMBED,$<)
	$(Q)sh scripts/embed.sh $< $@

$(BUILD)/gen/%.lua.o: $(BUILD)/gen/%.lua.c
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/gen/%.c: % scripts/embed.sh
	@mkdir -p $(@D)
	$(call msg,EMBED,$<)
	$(Q)sh scripts/embed.sh $< $@

$(BUILD)/gen/%.o: $(BUILD)/gen/%.c
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# --- workflows ----------------------------------------------------------------
deps:
	bash scripts/deps.sh

test:
	@bash scripts/deps.sh --if-missing
	@$(MAKE) --no-print-directory build-tests SANITIZE=$(SANITIZE)
	@TXAGG_BIN=$(BINDIR) TXAGG_TESTBIN=$(BUILD) SANITIZE=$(SANITIZE) bash tests/run.sh $(T)

run:
	@bash scripts/deps.sh --if-missing
	@echo "run: building bin/ (make V=1 run shows the commands)"
	@$(MAKE) --no-print-directory $(if $(filter 1,$(V)),,-s) all
	@bash scripts/run.sh

bench:
	@bash scripts/deps.sh --if-missing
	@$(MAKE) --no-print-directory all
	@bash scripts/bench.sh

fuzz:
	@bash scripts/fuzz.sh

test-compose:
	@bash deploy/test-compose.sh

test-k8s:
	@bash deploy/k8s/test-k8s.sh

clean:
	$(Q)rm -rf build bin
