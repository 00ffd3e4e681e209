# rollgate: plain GNU make.
#
#   make            build build/rollgate
#   make run        install missing packages, build, run on the bundled config
#   make test       install missing packages, build, run every unit and integration test
#   make bench      build and run the benchmarks under bench/
#   make test SANITIZE=1   the same tests under ASan + UBSan (objects in build/san)
#
# Sources are discovered: every src/<module>/*.c goes into build/librollgate.a,
# every proto/*.proto is compiled by protoc-c into build/gen, every
# tests/<module>/test_<file>.c becomes one cmocka binary.

CC       ?= cc
PKGS     := libuv libcurl yajl libprotobuf-c snappy libpcre2-8 yaml-0.1
VERSION  := 0.1.0
GIT_SHA  := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)

# MODULES restricts the build to some of src/<module> (and their tests), so one
# module can be built and tested while another is half-written:
#   make unit MODULES="util store" BUILD=build/store
ALL_MODULES := $(notdir $(patsubst %/,%,$(wildcard src/*/)))
MODULES  ?= $(ALL_MODULES)
ifeq ($(SANITIZE),1)
BUILD    ?= build/san
SAN      := -fsanitize=address,undefined
OPT      := -O1 -g -fno-omit-frame-pointer $(SAN) -fno-sanitize-recover=undefined
else
BUILD    ?= build
OPT      := -O2 -g
endif

CPPFLAGS += -Isrc -I$(BUILD)/gen -D_GNU_SOURCE \
            -DRG_VERSION='"$(VERSION)"' -DRG_GIT_SHA='"$(GIT_SHA)"'
CFLAGS   += -std=c11 $(OPT) -Wall -Wextra -Werror -ffp-contract=off -MMD -MP \
            $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDFLAGS  += $(SAN)
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lhttp_parser -lcrypto -lm -lpthread

PROTOS   := $(wildcard proto/*.proto)
GEN_C    := $(patsubst proto/%.proto,$(BUILD)/gen/%.pb-c.c,$(PROTOS))
GEN_H    := $(GEN_C:.c=.h)
LIB_SRC  := $(foreach m,$(MODULES),$(wildcard src/$(m)/*.c))
LIB_OBJ  := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRC)) $(GEN_C:.c=.o)
# A partial build gets an archive of its own, so it never replaces the full one.
empty    :=
space    := $(empty) $(empty)
LIB      := $(BUILD)/librollgate$(if $(filter-out $(MODULES),$(ALL_MODULES)),-$(subst $(space),-,$(strip $(MODULES)))).a
BIN      := $(BUILD)/rollgate
TEST_SRC := $(foreach m,$(MODULES),$(wildcard tests/$(m)/test_*.c))
TEST_BIN := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
BENCH_SRC:= $(wildcard bench/*.c)
BENCH_BIN:= $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))
# Helper programs the integration tests drive (data generators, fake servers).
TOOL_SRC := $(wildcard tests/tools/*.c)
TOOL_BIN := $(patsubst tests/tools/%.c,$(BUILD)/tools/%,$(TOOL_SRC))

# Debian packages: libraries, code generator, and the real servers the tests run.
DEB_PKGS := build-essential pkg-config git libuv1-dev libcurl4-openssl-dev libyajl-dev \
            libprotobuf-c-dev protobuf-c-compiler libsnappy-dev libcmocka-dev \
            libhttp-parser-dev libyaml-dev libpcre2-dev libssl-dev curl python3 \
            prometheus prometheus-alertmanager victoria-metrics

.PHONY: all deps run test check unit integration bench clean check-headers
.DEFAULT_GOAL := all

all: $(BIN)

deps:
	@missing=""; for p in $(DEB_PKGS); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "deps: installing$$missing"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; \
	fi

run: deps
	@$(MAKE) --no-print-directory all
	$(BIN) run

test: deps
	@$(MAKE) --no-print-directory check

check: all $(TEST_BIN) $(BENCH_BIN) $(TOOL_BIN)
	@BUILD=$(BUILD) sh tests/run.sh

unit: $(TEST_BIN)
	@BUILD=$(BUILD) sh tests/run.sh unit

integration: all $(BENCH_BIN) $(TOOL_BIN)
	@BUILD=$(BUILD) sh tests/run.sh integration

bench: all $(BENCH_BIN) $(TOOL_BIN)
	@BUILD=$(BUILD) sh bench/run.sh

$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: proto/%.proto
	@mkdir -p $(dir $@)
	protoc-c --proto_path=proto --c_out=$(BUILD)/gen $<

$(BUILD)/gen/%.pb-c.o: $(BUILD)/gen/%.pb-c.c
	$(CC) $(CPPFLAGS) $(CFLAGS) -Wno-unused-parameter -c -o $@ $<

$(BUILD)/%.o: %.c | $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

# Link to a temporary name and rename, so a failed link never leaves a broken binary.
$(BIN): $(BUILD)/src/main.o $(LIB)
	$(CC) $(LDFLAGS) -o $@.new $^ $(LDLIBS)
	@mv $@.new $@

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tools/%: $(BUILD)/tests/tools/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Every header compiles on its own.
check-headers: $(GEN_H)
	@for h in $$(find src -name '*.h'); do \
	    echo "#include \"$${h#src/}\"" | $(CC) $(CPPFLAGS) $(CFLAGS) -x c -fsyntax-only - || exit 1; \
	done; echo "check-headers: ok"

clean:
	rm -rf build

.SECONDARY:
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
