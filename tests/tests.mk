# tests.mk: the test suite, included by the top-level Makefile.
#
#   make test        build both variants and every test program, then run
#                    tests/run.sh (every test, release and debug, linked and
#                    preloaded)
#   make tests       build the test programs only
#
# For each variant V (out/V/tests/):
#   tests/test_N.c   -> test_N_linked (linked with out/V/libhakmem.so)
#                       test_N_plain  (no hakmem; run with LD_PRELOAD)
#   tests/test_N.cc  -> the same, built with g++
#   tests/test_prefix.c -> test_prefix_linked only, with libhakmem-prefix.a
#   tests/unit_N.c   -> unit_N, linked only, with libhakmem.a and -Isrc
#                       (unit tests may use internal headers)
# Other cases run.sh runs: python3 tests/py_churn.py, tests/progs.sh and
# tests/options_env.sh (preloaded), a TLS-model check of libhakmem.so and
# one that it needs no libstdc++ (test_glibc_api runs
# tests/check_malloc_info.py itself),
# bench_random_mixed; and once: tests/test_options_doc.sh (README's options
# table against src/options.c, read with unit_options --dump) and
# tests/test_install.sh (make install/uninstall; builds tests/install_probe.c
# against the installed files itself).

TEST_CFLAGS   := -std=gnu11 -O2 -g -Wall -Wextra -Wno-unused-parameter -pthread -Iinclude \
                 -fno-builtin-malloc -fno-builtin-free -fno-builtin-calloc \
                 -fno-builtin-realloc
TEST_CXXFLAGS := -std=gnu++17 -O2 -g -Wall -Wextra -Wno-unused-parameter -pthread -Iinclude \
                 -fno-builtin-malloc -fno-builtin-free -fno-allocation-dce
TEST_LIBS     := -ldl -pthread

# test_prefix is special (prefix library, linked only); the rest are generic
TEST_C_NAMES   := $(filter-out prefix,$(patsubst tests/test_%.c,%,$(wildcard tests/test_*.c)))
TEST_CXX_NAMES := $(patsubst tests/test_%.cc,%,$(wildcard tests/test_*.cc))
TEST_UNIT_NAMES := $(patsubst tests/unit_%.c,%,$(wildcard tests/unit_*.c))
TEST_HEADERS   := tests/testutil.h tests/handoff.h include/hakmem.h

# $(1) = variant
define TEST_RULES
TEST_BINS_$(1) := \
	$$(foreach n,$$(TEST_C_NAMES) $$(TEST_CXX_NAMES),out/$(1)/tests/test_$$(n)_linked out/$(1)/tests/test_$$(n)_plain) \
	$$(if $$(wildcard tests/test_prefix.c),out/$(1)/tests/test_prefix_linked) \
	$$(foreach n,$$(TEST_UNIT_NAMES),out/$(1)/tests/unit_$$(n)) \
	out/$(1)/tests/libhak_deepbind.so

# the library test_deepbind opens with RTLD_DEEPBIND (plain: no hakmem)
out/$(1)/tests/libhak_deepbind.so: tests/deepbind_lib.c tests/tests.mk
	@mkdir -p $$(@D)
	$$(CC) -shared -fPIC -O2 -fno-builtin $$< -o $$@

out/$(1)/tests/test_%_linked: tests/test_%.c $$(TEST_HEADERS) out/$(1)/libhakmem.so tests/tests.mk
	@mkdir -p $$(@D)
	$$(CC) $$(TEST_CFLAGS) $$< -o $$@ $$(call LINK_HAKMEM,$(1)) $$(TEST_LIBS)

out/$(1)/tests/test_%_plain: tests/test_%.c $$(TEST_HEADERS) tests/tests.mk
	@mkdir -p $$(@D)
	$$(CC) $$(TEST_CFLAGS) $$< -o $$@ $$(TEST_LIBS)

out/$(1)/tests/test_%_linked: tests/test_%.cc $$(TEST_HEADERS) out/$(1)/libhakmem.so tests/tests.mk
	@mkdir -p $$(@D)
	$$(CXX) $$(TEST_CXXFLAGS) $$< -o $$@ $$(call LINK_HAKMEM,$(1)) $$(TEST_LIBS)

out/$(1)/tests/test_%_plain: tests/test_%.cc $$(TEST_HEADERS) tests/tests.mk
	@mkdir -p $$(@D)
	$$(CXX) $$(TEST_CXXFLAGS) $$< -o $$@ $$(TEST_LIBS)

# static prefix library: malloc stays glibc's; hak_* are called directly
out/$(1)/tests/test_prefix_linked: tests/test_prefix.c $$(TEST_HEADERS) out/$(1)/libhakmem-prefix.a tests/tests.mk
	@mkdir -p $$(@D)
	$$(CC) $$(TEST_CFLAGS) $$< -o $$@ out/$(1)/libhakmem-prefix.a $$(TEST_LIBS)

# unit tests see the internals and link the whole static library; -rdynamic
# lets dlsym(RTLD_DEFAULT) find hakmem's exported functions in them too;
# -UNDEBUG keeps assert() working in them in the release variant
out/$(1)/tests/unit_%: tests/unit_%.c $$(TEST_HEADERS) out/$(1)/libhakmem.a tests/tests.mk
	@mkdir -p $$(@D)
	$$(CC) $$(TEST_CFLAGS) $$(CFLAGS_$(1)) -UNDEBUG -Isrc $$< -o $$@ -rdynamic out/$(1)/libhakmem.a $$(TEST_LIBS)
endef
$(foreach v,$(VARIANTS),$(eval $(call TEST_RULES,$(v))))

TEST_BINS := $(foreach v,$(VARIANTS),$(TEST_BINS_$(v)))

# the secure build's own checks (preloaded out/secure) and the valgrind
# check of the debug build: plain programs
out/secure/tests/secure_check: tests/secure_check.c $(TEST_HEADERS) tests/tests.mk
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) $< -o $@ $(TEST_LIBS)
out/debug/tests/vg_client: tests/vg_client.c tests/tests.mk
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -O1 -g -fno-builtin-malloc -fno-builtin-free $< -o $@
TEST_BINS += out/secure/tests/secure_check out/debug/tests/vg_client

# The original's regression case runs the benchmark program itself
# (bench_random_mixed 25000 2048 123, linked and preloaded); its rules live in
# bench/bench.mk, and run.sh runs it when the binaries are there.
ifneq ($(wildcard bench/bench_random_mixed.c),)
TEST_BINS += out/release/bench_random_mixed_hakmem out/release/bench_random_mixed_system
endif

.PHONY: test tests
tests: $(VARIANTS) secure $(TEST_BINS)

test: tests
	bash tests/run.sh

# issue 6: fuzzing (tests/fuzz.mk); sanitizers, real programs, stress with
# many threads (tests/reliability.mk)
include tests/fuzz.mk tests/reliability.mk
