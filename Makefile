# hakmem build. GNU make and gcc only.
#
#   make                 release and debug libraries (out/release, out/debug)
#   make test            build everything and run the test suite
#   make NAME_hakmem     a benchmark linked with hakmem (out/release/NAME_hakmem)
#
# Each variant builds the same sources with its own flags, derived in one
# place below; the variant's directory is named after it.

CC      ?= gcc
CXX     ?= g++
# built by `make`; the others are built on demand (make secure, make asan, ...)
VARIANTS := release debug
SAN_VARIANTS := asan tsan secure

SRCS       := $(wildcard src/*.c)
# the standard names (malloc, ..., C++'s operator new): libhakmem only
CORE_SRCS  := $(filter-out src/override.c src/cxx.c,$(SRCS))
# compiled twice: libhakmem's copies also define malloc, free, ... as
# aliases of the functions themselves (-DHAK_STD_NAMES)
STD_SRCS   := src/alloc.c src/free.c

# -fno-builtin-*: stop gcc from turning our own calloc or realloc into calls to
# themselves (malloc+memset -> calloc).
BASE_CFLAGS := -std=gnu11 -Wall -Wextra -Wno-unused-parameter -fPIC -pthread \
	-fvisibility=hidden -ftls-model=initial-exec -Iinclude -Isrc -MMD -MP \
	-fno-builtin-malloc -fno-builtin-free -fno-builtin-calloc \
	-fno-builtin-realloc -fno-tree-loop-distribute-patterns
CFLAGS_release := -O2 -g -DHAKMEM_BUILD_RELEASE=1 -DNDEBUG
CFLAGS_debug   := -O1 -g -DHAKMEM_BUILD_DEBUG=1 -fno-omit-frame-pointer
CFLAGS_secure  := $(CFLAGS_release) -DHAKMEM_BUILD_SECURE=1
# hakmem's own code under the sanitizers (the debug build's checks included)
CFLAGS_asan    := $(CFLAGS_debug) -fsanitize=address,undefined -fno-sanitize-recover=undefined
CFLAGS_tsan    := $(CFLAGS_debug) -fsanitize=thread
LDFLAGS_asan   := -fsanitize=address,undefined
LDFLAGS_tsan   := -fsanitize=thread
# operator new's new-handler may throw: the exception unwinds through cxx.c
CFLAGS_FILE_cxx := -fexceptions

.PHONY: all test clean $(VARIANTS) $(SAN_VARIANTS)
all: $(VARIANTS)

# $(1) = variant
define VARIANT_RULES
OBJ_$(1)      := $$(patsubst src/%.c,out/$(1)/obj/%.o,$$(filter-out $$(STD_SRCS),$$(SRCS))) \
                 $$(patsubst src/%.c,out/$(1)/obj/std/%.o,$$(STD_SRCS))
CORE_OBJ_$(1) := $$(patsubst src/%.c,out/$(1)/obj/%.o,$$(CORE_SRCS))
LIBS_$(1)     := out/$(1)/libhakmem.so out/$(1)/libhakmem.a \
                 out/$(1)/libhakmem-prefix.so out/$(1)/libhakmem-prefix.a

$(1): $$(LIBS_$(1))

out/$(1)/obj/%.o: src/%.c Makefile
	@mkdir -p $$(@D)
	$$(CC) $$(BASE_CFLAGS) $$(CFLAGS_$(1)) $$(CFLAGS_FILE_$$*) -c $$< -o $$@

out/$(1)/obj/std/%.o: src/%.c Makefile
	@mkdir -p $$(@D)
	$$(CC) $$(BASE_CFLAGS) $$(CFLAGS_$(1)) -DHAK_STD_NAMES -c $$< -o $$@

out/$(1)/libhakmem.so: $$(OBJ_$(1))
	$$(CC) -shared -pthread $$(LDFLAGS_$(1)) -Wl,-soname,libhakmem.so -Wl,-z,now -o $$@ $$^
out/$(1)/libhakmem.a: $$(OBJ_$(1))
	rm -f $$@ && ar rcs $$@ $$^
out/$(1)/libhakmem-prefix.so: $$(CORE_OBJ_$(1))
	$$(CC) -shared -pthread $$(LDFLAGS_$(1)) -Wl,-soname,libhakmem-prefix.so -o $$@ $$^
out/$(1)/libhakmem-prefix.a: $$(CORE_OBJ_$(1))
	rm -f $$@ && ar rcs $$@ $$^

-include $$(patsubst %.o,%.d,$$(sort $$(OBJ_$(1)) $$(CORE_OBJ_$(1))))
endef
$(foreach v,$(VARIANTS) $(SAN_VARIANTS),$(eval $(call VARIANT_RULES,$(v))))

# Programs linked with a variant's shared library find it next to themselves.
LINK_HAKMEM = -Lout/$(1) -Wl,-rpath,'$$ORIGIN' -Wl,-rpath,'$$ORIGIN/..' -lhakmem -pthread

include bench/bench.mk
include tests/tests.mk

clean:
	rm -rf out
include mk/install.mk
