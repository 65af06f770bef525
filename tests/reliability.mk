# reliability.mk: sanitizers, real programs and stress with many threads
# (issue 6).  Included by tests/tests.mk; the cases themselves are in
# tests/reliability.sh, which tests/run.sh sources.
#
#   make test-asan   the prefix-API programs (prefix_stress, the fuzz replay
#                    and a short random fuzz run) against out/asan, hakmem
#                    built with ASan+UBSan
#   make test-tsan   the multi-threaded ones (prefix_stress with 4, 16 and 64
#                    threads, the fuzz replay, which has a second thread)
#                    against out/tsan, hakmem built with ThreadSanitizer
#   make test-real   real programs with out/release/libhakmem.so preloaded:
#                    CPython's regression tests, sqlite3, jq, perl, xz/zstd,
#                    git (tests/real/)
# All three are part of `make test`.
#
# Programs: out/V/tests/prefix_stress for V in release debug asan tsan,
# tests/prefix_stress.c linked with out/V/libhakmem-prefix.a (and, for asan
# and tsan, compiled with the same -fsanitize flags as hakmem there).

REL_PREFIX_VARIANTS := release debug asan tsan

# $(1) = variant
define REL_RULES
out/$(1)/tests/prefix_stress: tests/prefix_stress.c $$(TEST_HEADERS) out/$(1)/libhakmem-prefix.a tests/reliability.mk
	@mkdir -p $$(@D)
	$$(CC) $$(TEST_CFLAGS) $$(call SAN_FLAGS_OF,$(1)) $$< -o $$@ out/$(1)/libhakmem-prefix.a $$(TEST_LIBS)
endef
$(foreach v,$(REL_PREFIX_VARIANTS),$(eval $(call REL_RULES,$(v))))

REL_BINS := $(foreach v,$(REL_PREFIX_VARIANTS),out/$(v)/tests/prefix_stress)

tests: $(REL_BINS)

.PHONY: test-asan test-tsan test-real
test-asan: tests
	HAKTEST_FILTER='^asan ' bash tests/run.sh
test-tsan: tests
	HAKTEST_FILTER='^tsan ' bash tests/run.sh
test-real: tests
	HAKTEST_FILTER='^release real ' bash tests/run.sh
