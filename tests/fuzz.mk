# fuzz.mk: the fuzz harness tests/fuzz/fuzz_hak.c (issue 6, "Fuzzing").
# Included by tests/tests.mk.
#
#   make fuzz              fuzz for FUZZ_SECONDS (default 300) seconds: with
#                          libFuzzer when clang has it (out/fuzz/fuzz_hak),
#                          else with the harness's own random driver; new
#                          inputs go to out/fuzz/corpus, failing ones to
#                          out/fuzz/artifacts/ (copy them to tests/fuzz/corpus
#                          once the bug is fixed: they are replayed forever);
#                          libFuzzer first runs every input already in
#                          out/fuzz/corpus, outside FUZZ_SECONDS
#   make fuzz-replay       replay tests/fuzz/corpus with the debug build
#   make fuzz-build        build what clang allows (part of `make tests`)
#
# Programs:
#   out/fuzz/fuzz_hak      libFuzzer binary: hakmem's core sources rebuilt by
#                          clang with the debug build's checks, coverage
#                          instrumentation and ASan+UBSan (out/fuzz/obj)
#   out/V/tests/fuzz_replay  for V in release debug asan tsan: the harness
#                          with its own main (replay files or directories;
#                          --random SECONDS), linked with
#                          out/V/libhakmem-prefix.a and, for asan and tsan,
#                          the sanitizer's flags
# tests/run.sh runs a short libFuzzer run (HAKTEST_FUZZ_SECONDS, default 25;
# the random driver when there is no libFuzzer) and the corpus replays.

FUZZ_SECONDS ?= 300
FUZZ_MAX_LEN ?= 4096
FUZZ_ARGS    ?=
FUZZ_CC      ?= clang
FUZZ_VARIANTS := release debug asan tsan

# clang's flags for hakmem's sources: the Makefile's, less gcc's own option
FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := $(filter-out -fno-tree-loop-distribute-patterns,$(BASE_CFLAGS)) \
               $(CFLAGS_debug) $(FUZZ_SAN) -fsanitize=fuzzer-no-link
FUZZ_OBJS   := $(patsubst src/%.c,out/fuzz/obj/%.o,$(CORE_SRCS))

# the sanitizer flags of a variant (none for release and debug), for the
# test programs linked with its prefix library
SAN_FLAGS_OF = $(filter -fsanitize=% -fno-sanitize-recover=%,$(CFLAGS_$(1)))

.PHONY: fuzz fuzz-build fuzz-replay

out/fuzz/obj/%.o: src/%.c Makefile tests/fuzz.mk
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

-include $(FUZZ_OBJS:.o=.d)

out/fuzz/fuzz_hak: tests/fuzz/fuzz_hak.c include/hakmem.h $(FUZZ_OBJS) tests/fuzz.mk
	@mkdir -p $(@D)
	$(FUZZ_CC) -std=gnu11 -O1 -g -Wall -Wextra -Iinclude $(FUZZ_SAN) -fsanitize=fuzzer \
		$< $(FUZZ_OBJS) -o $@ -pthread -ldl

# $(1) = variant
define FUZZ_REPLAY_RULES
out/$(1)/tests/fuzz_replay: tests/fuzz/fuzz_hak.c include/hakmem.h out/$(1)/libhakmem-prefix.a tests/fuzz.mk
	@mkdir -p $$(@D)
	$$(CC) $$(TEST_CFLAGS) $$(call SAN_FLAGS_OF,$(1)) -DHAKFUZZ_MAIN $$< -o $$@ \
		out/$(1)/libhakmem-prefix.a $$(TEST_LIBS)
endef
$(foreach v,$(FUZZ_VARIANTS),$(eval $(call FUZZ_REPLAY_RULES,$(v))))

FUZZ_REPLAY_BINS := $(foreach v,$(FUZZ_VARIANTS),out/$(v)/tests/fuzz_replay)

# The libFuzzer binary only where clang can link a fuzzer; without it the
# tests fall back to the random driver (and say so).
fuzz-build: $(FUZZ_REPLAY_BINS)
	@mkdir -p out; if printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }\n' | \
	    $(FUZZ_CC) -x c - -fsanitize=fuzzer -o out/fuzz-probe >/dev/null 2>&1; then \
	    rm -f out/fuzz-probe; \
	    $(MAKE) --no-print-directory out/fuzz/fuzz_hak; \
	else \
	    rm -f out/fuzz-probe; \
	    echo "note: $(FUZZ_CC) cannot build a libFuzzer program; fuzzing uses the random driver"; \
	fi

tests: fuzz-build

fuzz: fuzz-build
	@mkdir -p out/fuzz/corpus out/fuzz/artifacts
	@if [ -x out/fuzz/fuzz_hak ]; then \
	    echo "fuzzing with libFuzzer for $(FUZZ_SECONDS) s (corpus out/fuzz/corpus + tests/fuzz/corpus)"; \
	    out/fuzz/fuzz_hak -max_total_time=$(FUZZ_SECONDS) -max_len=$(FUZZ_MAX_LEN) -timeout=120 \
	        -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix=out/fuzz/artifacts/ \
	        $(FUZZ_ARGS) out/fuzz/corpus tests/fuzz/corpus; \
	else \
	    echo "no libFuzzer: random inputs for $(FUZZ_SECONDS) s"; \
	    out/debug/tests/fuzz_replay --random $(FUZZ_SECONDS) --save out/fuzz/artifacts; \
	fi

fuzz-replay: out/debug/tests/fuzz_replay
	out/debug/tests/fuzz_replay tests/fuzz/corpus
