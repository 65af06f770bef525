# bench/bench.mk: builds and runs the benchmarks (included by the top-level
# Makefile, which provides CC and LINK_HAKMEM).
#
#   make benches        build every benchmark, both flavours, and the helper
#   make NAME_hakmem    out/release/NAME_hakmem  (NAME.c linked with libhakmem)
#   make NAME_system    out/release/NAME_system  (NAME.c on the system malloc;
#                       peer allocators are preloaded into it)
#   make bench          quick comparison of every allocator present (< 4 min
#                       with all ten on 2 cores)
#   make bench-memory   hakmem's free policies and the peers on bench_memory
#                       with lulls, RSS sampled over time (< 4 min)
#   make bench-full     larger runs at the thread counts BENCH_THREADS, and
#                       bench-memory's full mode (run by hand)
#   make bench-instr    instructions per operation under callgrind
#
# PEERS_DIR names the folder of extra peer libraries (mimalloc-3.4.3,
# mimalloc-2.4.1, snmalloc, rpmalloc; see its README.md), used beside the
# Debian peers when it exists; make bench PEERS_DIR= leaves them out.
# BENCH_THREADS sets the thread counts of bench-full's multi-threaded
# benchmarks, e.g. make bench-full BENCH_THREADS="1 2 4 8".
# BENCH_ARGS is passed to scripts/bench.sh, e.g. make bench BENCH_ARGS="--runs 5",
# BENCH_MEMORY_ARGS to scripts/bench-memory.sh, BENCH_INSTR_ARGS to
# scripts/bench-instr.sh.
# See docs/BENCHMARKS.md.

BENCH_NAMES  := larson bench_random_mixed bench_mid_large_mt bench_xthread bench_memory \
                bench_thread_churn bench_large_churn
BENCH_DIR    := out/release
BENCH_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -pthread
BENCH_DEPS   := bench/bench_util.h bench/bench.mk
BENCH_ARGS   ?=
BENCH_MEMORY_ARGS ?=
BENCH_INSTR_ARGS ?=
PEERS_DIR    ?= ../shared/peers
BENCH_THREADS ?= 1 2 4
BENCH_PEERS  = --peers-dir '$(PEERS_DIR)'

BENCH_HAKMEM_BINS := $(patsubst %,$(BENCH_DIR)/%_hakmem,$(BENCH_NAMES))
BENCH_SYSTEM_BINS := $(patsubst %,$(BENCH_DIR)/%_system,$(BENCH_NAMES))
BENCH_RUNSTAT     := $(BENCH_DIR)/bench_runstat

.PHONY: benches bench bench-full bench-memory bench-instr \
	$(addsuffix _hakmem,$(BENCH_NAMES)) $(addsuffix _system,$(BENCH_NAMES))

$(BENCH_HAKMEM_BINS): $(BENCH_DIR)/%_hakmem: bench/%.c $(BENCH_DEPS) $(BENCH_DIR)/libhakmem.so
	@mkdir -p $(@D)
	$(CC) $(BENCH_CFLAGS) -o $@ $< $(call LINK_HAKMEM,release)

$(BENCH_SYSTEM_BINS): $(BENCH_DIR)/%_system: bench/%.c $(BENCH_DEPS)
	@mkdir -p $(@D)
	$(CC) $(BENCH_CFLAGS) -o $@ $<

$(BENCH_RUNSTAT): bench/runstat.c bench/bench.mk
	@mkdir -p $(@D)
	$(CC) $(BENCH_CFLAGS) -o $@ $<

# make NAME_hakmem / make NAME_system
$(addsuffix _hakmem,$(BENCH_NAMES)): %_hakmem: $(BENCH_DIR)/%_hakmem
$(addsuffix _system,$(BENCH_NAMES)): %_system: $(BENCH_DIR)/%_system

benches: $(BENCH_HAKMEM_BINS) $(BENCH_SYSTEM_BINS) $(BENCH_RUNSTAT)

bench: benches secure
	bash scripts/bench.sh --quick $(BENCH_PEERS) $(BENCH_ARGS)

# Both parts run even if the first has a failed run; make then fails.
bench-full: benches secure
	bash scripts/bench.sh --full $(BENCH_PEERS) --threads '$(BENCH_THREADS)' $(BENCH_ARGS); status=$$?; \
	bash scripts/bench-memory.sh --full $(BENCH_PEERS) $(BENCH_MEMORY_ARGS) && exit $$status

bench-memory: $(BENCH_DIR)/bench_memory_hakmem $(BENCH_DIR)/bench_memory_system $(BENCH_RUNSTAT)
	bash scripts/bench-memory.sh --quick $(BENCH_PEERS) $(BENCH_MEMORY_ARGS)

bench-instr: benches
	bash scripts/bench-instr.sh $(BENCH_PEERS) $(BENCH_INSTR_ARGS)
