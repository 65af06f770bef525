# mk/install.mk: `make install` and `make uninstall` (included by the Makefile).
#
#   make install [PREFIX=/usr/local] [DESTDIR=]
#   make uninstall [PREFIX=/usr/local] [DESTDIR=]
#
# install builds what is missing, then puts in place:
#   LIBDIR/libhakmem.so, libhakmem.a     the release build (drop-in malloc)
#   LIBDIR/libhakmem-prefix.so, .a       the hak_-only library
#   LIBDIR/libhakmem-debug.so            the debug build, for `hakmem --debug`
#   LIBDIR/libhakmem-secure.so           the secure build, for `hakmem --secure`
#   INCLUDEDIR/hakmem.h
#   PKGCONFIGDIR/hakmem.pc, hakmem-prefix.pc   (generated for PREFIX)
#   BINDIR/hakmem                        runs a program with hakmem preloaded;
#                                        finds the libraries relative to itself
# uninstall removes exactly those files (directories are left in place: they
# may have been there before). Paths: PREFIX must be absolute; BINDIR, LIBDIR,
# INCLUDEDIR and PKGCONFIGDIR default to PREFIX/bin, PREFIX/lib,
# PREFIX/include and LIBDIR/pkgconfig. DESTDIR is prepended to every path
# written, and appears in none of the installed files (staged installs).
# Run as root without DESTDIR, both also run $(LDCONFIG) (default ldconfig;
# LDCONFIG=true skips it) so that the dynamic linker's cache knows of
# libhakmem.so at once when LIBDIR is a system directory such as
# /usr/local/lib.

PREFIX       ?= /usr/local
BINDIR       ?= $(PREFIX)/bin
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
DESTDIR      ?=
INSTALL      ?= install
LDCONFIG     ?= ldconfig

# the version is the one in the public header
HAKMEM_VERSION := $(shell sed -n 's/^.define HAKMEM_VERSION_MAJOR[[:space:]]*//p' include/hakmem.h).$(shell sed -n 's/^.define HAKMEM_VERSION_MINOR[[:space:]]*//p' include/hakmem.h)

# what install reads (built by the variant rules of the Makefile)
INST_SRC_LIBS := out/release/libhakmem.so out/release/libhakmem.a \
                 out/release/libhakmem-prefix.so out/release/libhakmem-prefix.a \
                 out/debug/libhakmem.so out/secure/libhakmem.so
INST_TEMPLATES := mk/hakmem.pc.in mk/hakmem-prefix.pc.in scripts/hakmem

# what install writes, without DESTDIR; uninstall removes exactly these
INST_FILES := $(LIBDIR)/libhakmem.so $(LIBDIR)/libhakmem.a \
              $(LIBDIR)/libhakmem-prefix.so $(LIBDIR)/libhakmem-prefix.a \
              $(LIBDIR)/libhakmem-debug.so $(LIBDIR)/libhakmem-secure.so \
              $(INCLUDEDIR)/hakmem.h \
              $(PKGCONFIGDIR)/hakmem.pc $(PKGCONFIGDIR)/hakmem-prefix.pc \
              $(BINDIR)/hakmem

# in the .pc files, paths under PREFIX are written as ${prefix}/..., so that
# pkg-config --define-prefix can relocate them
INST_PC_SUBST := -e 's|@PREFIX@|$(PREFIX)|g' \
                 -e 's|@LIBDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))|g' \
                 -e 's|@INCLUDEDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))|g' \
                 -e 's|@VERSION@|$(HAKMEM_VERSION)|g'

# refresh the dynamic linker's cache after a real install or uninstall as root
define INST_LDCONFIG
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v $(LDCONFIG) >/dev/null 2>&1; then \
		echo "$(LDCONFIG)"; $(LDCONFIG) || true; \
	fi
endef

.PHONY: install uninstall

install: $(INST_SRC_LIBS) include/hakmem.h $(INST_TEMPLATES)
	@case "$(PREFIX)" in /*) ;; *) echo "make install: PREFIX must be an absolute path (PREFIX=$(PREFIX))" >&2; exit 1;; esac
	$(INSTALL) -d "$(DESTDIR)$(LIBDIR)" "$(DESTDIR)$(INCLUDEDIR)" "$(DESTDIR)$(PKGCONFIGDIR)" "$(DESTDIR)$(BINDIR)"
	$(INSTALL) -m 755 out/release/libhakmem.so "$(DESTDIR)$(LIBDIR)/libhakmem.so"
	$(INSTALL) -m 644 out/release/libhakmem.a "$(DESTDIR)$(LIBDIR)/libhakmem.a"
	$(INSTALL) -m 755 out/release/libhakmem-prefix.so "$(DESTDIR)$(LIBDIR)/libhakmem-prefix.so"
	$(INSTALL) -m 644 out/release/libhakmem-prefix.a "$(DESTDIR)$(LIBDIR)/libhakmem-prefix.a"
	$(INSTALL) -m 755 out/debug/libhakmem.so "$(DESTDIR)$(LIBDIR)/libhakmem-debug.so"
	$(INSTALL) -m 755 out/secure/libhakmem.so "$(DESTDIR)$(LIBDIR)/libhakmem-secure.so"
	$(INSTALL) -m 644 include/hakmem.h "$(DESTDIR)$(INCLUDEDIR)/hakmem.h"
	sed $(INST_PC_SUBST) mk/hakmem.pc.in >"$(DESTDIR)$(PKGCONFIGDIR)/hakmem.pc"
	sed $(INST_PC_SUBST) mk/hakmem-prefix.pc.in >"$(DESTDIR)$(PKGCONFIGDIR)/hakmem-prefix.pc"
	chmod 644 "$(DESTDIR)$(PKGCONFIGDIR)/hakmem.pc" "$(DESTDIR)$(PKGCONFIGDIR)/hakmem-prefix.pc"
	rel=$$(realpath -m --relative-to="$(BINDIR)" "$(LIBDIR)") && \
	sed -e "s|@LIBDIR_REL@|$$rel|g" -e 's|@VERSION@|$(HAKMEM_VERSION)|g' \
		scripts/hakmem >"$(DESTDIR)$(BINDIR)/hakmem.tmp" && \
	chmod 755 "$(DESTDIR)$(BINDIR)/hakmem.tmp" && \
	mv -f "$(DESTDIR)$(BINDIR)/hakmem.tmp" "$(DESTDIR)$(BINDIR)/hakmem"
	$(INST_LDCONFIG)

uninstall:
	rm -f $(foreach f,$(INST_FILES),"$(DESTDIR)$(f)")
	$(INST_LDCONFIG)
