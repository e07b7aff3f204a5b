# powersync_pg: the extension library (PGXS), the pure C++ core (rules + protocol), its unit and
# conformance tests, the HTTP gateway, fuzz targets and benchmarks.
#
#   make                 extension library, gateway, test binaries
#   make install         install the extension into the local Postgres (pg_config)
#   make check-all       everything the README's test command runs (see test/run_all.sh)
#   make demo            local Postgres + extension + demo rules + gateway (test/demo/run.sh)
#
# Sources are discovered by directory, so adding a file never needs a Makefile edit:
#   src/rules, src/protocol   pure C++ core, compiled WITHOUT Postgres headers (enforced)
#   src/pg                    the thin Postgres layer (only place with postgres.h)
#   src/gateway               the powersync-gateway executable (libpq, Boost.Beast, OpenSSL)
#   test/unit/*.cpp           GoogleTest unit tests of the core  -> $(BUILD)/unit_tests
#   test/gateway_unit/*.cpp   GoogleTest unit tests of the gateway -> $(BUILD)/gateway_unit_tests
#   test/conformance/*.cpp    data-driven conformance runner     -> $(BUILD)/conformance
#   test/fuzz/*.cpp           one libFuzzer target per file      -> $(BUILD)/fuzz/<name>
#   test/bench/*.cpp          one benchmark program per file     -> $(BUILD)/bench/<name>
# BUILD=<dir> keeps object files apart (parallel work trees, sanitizer builds).

EXTENSION   = powersync_pg
MODULE_big  = powersync_pg
EXT_VERSION = 0.1
BUILD      ?= build

CORE_SRCS    := $(sort $(wildcard src/rules/*.cpp src/protocol/*.cpp))
PG_SRCS      := $(sort $(wildcard src/pg/*.cpp))
GATEWAY_SRCS := $(sort $(wildcard src/gateway/*.cpp))
GATEWAY_MAIN := src/gateway/main.cpp
CORE_OBJS    := $(CORE_SRCS:%.cpp=$(BUILD)/obj/%.o)
PG_OBJS      := $(PG_SRCS:%.cpp=$(BUILD)/obj/%.o)
GATEWAY_OBJS := $(filter-out $(GATEWAY_MAIN:%.cpp=$(BUILD)/obj/%.o),$(GATEWAY_SRCS:%.cpp=$(BUILD)/obj/%.o))

OBJS      = $(PG_OBJS) $(CORE_OBJS)
DATA_built = sql/$(EXTENSION)--$(EXT_VERSION).sql
SHLIB_LINK += -lstdc++ -lyaml-cpp -lcrypto

# pg_regress inputs: every sql/*.sql except the install script. They are normally run by
# test/suites/20-pg-regress.sh (as the postgres user, on a temporary instance).
REGRESS      = $(filter-out $(EXTENSION)--%,$(basename $(notdir $(wildcard sql/*.sql))))
REGRESS_OPTS = --temp-config=test/pg_test.conf --temp-instance=tmp_check

# The JIT bitcode rules of PGXS do not know our build directory; the library needs no bitcode.
override with_llvm := no

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

CXX      ?= g++
PS_CXXFLAGS := -std=c++17 -O2 -g -fPIC -Wall -Wextra -Wno-unused-parameter -Iinclude $(EXTRA_CXXFLAGS)
PG_INCLUDES := -I$(shell $(PG_CONFIG) --includedir-server)
GTEST_LIBS  := -lgtest_main -lgtest -lpthread
CORE_LIBS   := -lyaml-cpp -lcrypto

all: $(BUILD)/unit_tests $(if $(wildcard test/conformance/*.cpp),$(BUILD)/conformance) gateway

# Only src/pg sees the Postgres server headers; the core compiles without them. (Postgres' headers
# use `register`, which C++17 warns about.)
$(BUILD)/obj/src/pg/%.o: EXTRA_INCLUDES = $(PG_INCLUDES) -Wno-register

$(BUILD)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(PS_CXXFLAGS) $(EXTRA_INCLUDES) -MMD -MP -c $< -o $@

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

sql/$(EXTENSION)--$(EXT_VERSION).sql: $(sort $(wildcard sql/install/*.sql))
	cat $^ > $@

$(BUILD)/libpowersync_core.a: $(CORE_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

UNIT_SRCS := $(sort $(wildcard test/unit/*.cpp))
$(BUILD)/unit_tests: $(UNIT_SRCS:%.cpp=$(BUILD)/obj/%.o) $(BUILD)/libpowersync_core.a
	$(CXX) $(PS_CXXFLAGS) -o $@ $^ $(CORE_LIBS) $(GTEST_LIBS)
# The replication worker's evaluation thread has no Postgres dependency: unit-tested with the core.
$(BUILD)/unit_tests: $(BUILD)/obj/src/pg/evaluation_thread.o

CONF_SRCS := $(sort $(wildcard test/conformance/*.cpp))
$(BUILD)/conformance: $(CONF_SRCS:%.cpp=$(BUILD)/obj/%.o) $(BUILD)/libpowersync_core.a
	$(CXX) $(PS_CXXFLAGS) -o $@ $^ $(CORE_LIBS)

# The gateway: everything but main.cpp also goes into the gateway unit tests.
GATEWAY_LIBS := $(CORE_LIBS) -lpq -lssl -lcrypto -lboost_system -lpthread
gateway: $(if $(GATEWAY_SRCS),$(BUILD)/powersync-gateway $(BUILD)/gateway_unit_tests)
$(BUILD)/powersync-gateway: $(GATEWAY_MAIN:%.cpp=$(BUILD)/obj/%.o) $(GATEWAY_OBJS) $(BUILD)/libpowersync_core.a
	$(CXX) $(PS_CXXFLAGS) -o $@ $^ $(GATEWAY_LIBS)
$(BUILD)/obj/src/gateway/%.o $(BUILD)/obj/test/gateway_unit/%.o: EXTRA_INCLUDES = -I$(shell $(PG_CONFIG) --includedir)
GW_UNIT_SRCS := $(sort $(wildcard test/gateway_unit/*.cpp))
$(BUILD)/gateway_unit_tests: $(GW_UNIT_SRCS:%.cpp=$(BUILD)/obj/%.o) $(GATEWAY_OBJS) $(BUILD)/libpowersync_core.a
	$(CXX) $(PS_CXXFLAGS) -o $@ $^ $(GATEWAY_LIBS) $(GTEST_LIBS)

# Fuzz targets: core compiled again with clang, ASan/UBSan and libFuzzer instrumentation.
FUZZ_SRCS  := $(sort $(wildcard test/fuzz/*.cpp))
FUZZ_FLAGS := -std=c++17 -O1 -g -Iinclude -fsanitize=fuzzer-no-link,address,undefined
fuzz: $(FUZZ_SRCS:test/fuzz/%.cpp=$(BUILD)/fuzz/%)
$(BUILD)/fuzzobj/%.o: %.cpp
	@mkdir -p $(dir $@)
	clang++ $(FUZZ_FLAGS) -c $< -o $@
$(BUILD)/fuzz/%: test/fuzz/%.cpp $(CORE_SRCS:%.cpp=$(BUILD)/fuzzobj/%.o)
	@mkdir -p $(dir $@)
	clang++ $(FUZZ_FLAGS) -fsanitize=fuzzer $^ -o $@ $(CORE_LIBS)

BENCH_SRCS := $(sort $(wildcard test/bench/*.cpp))
bench: $(BENCH_SRCS:test/bench/%.cpp=$(BUILD)/bench/%)
$(BUILD)/bench/%: test/bench/%.cpp $(BUILD)/libpowersync_core.a
	@mkdir -p $(dir $@)
	$(CXX) $(PS_CXXFLAGS) -O3 -DNDEBUG -o $@ $^ $(CORE_LIBS) -lpq -lpthread $(EXTRA_INCLUDES) -I$(shell $(PG_CONFIG) --includedir)

check-all: all
	bash test/run_all.sh

clean-build:
	rm -rf $(BUILD)

demo:
	bash test/demo/run.sh

.PHONY: gateway fuzz bench check-all clean-build demo
