#!/usr/bin/env python3
# check_malloc_info.py: parses what malloc_info(0, fp) wrote (test_glibc_api
# runs it) with a real XML parser and checks it against glibc's schema and
# against the figures the program read from mallinfo2 just before.
#
#   check_malloc_info.py FILE ARENA HBLKS HBLKHD CLASS_TO
#
# ARENA, HBLKS, HBLKHD: mallinfo2's figures; CLASS_TO: the upper bound of a
# size class the program has blocks of, which must have its <size> line.
# Exit status 0 when everything holds; else one line on stderr saying what.
import sys
import xml.etree.ElementTree as ET


def fail(msg):
    sys.stderr.write("check_malloc_info: " + msg + "\n")
    sys.exit(1)


def number(elem, attr):
    v = elem.get(attr)
    if v is None or not v.isdigit():
        fail("<%s> attribute %s=%r is not a number" % (elem.tag, attr, v))
    return int(v)


def check_totals(parent, where, want_mmap):
    totals = {t.get("type"): t for t in parent.findall("total")}
    for kind in ("fast", "rest") + (("mmap",) if want_mmap else ()):
        if kind not in totals:
            fail('%s has no <total type="%s">' % (where, kind))
        number(totals[kind], "count")
        number(totals[kind], "size")
    systems = {s.get("type"): number(s, "size") for s in parent.findall("system")}
    if set(systems) != {"current", "max"}:
        fail("%s: <system> types %s, not current and max" % (where, sorted(systems)))
    if systems["max"] < systems["current"]:
        fail("%s: system max %d < current %d" % (where, systems["max"], systems["current"]))
    aspaces = {a.get("type"): number(a, "size") for a in parent.findall("aspace")}
    if set(aspaces) != {"total", "mprotect"}:
        fail("%s: <aspace> types %s, not total and mprotect" % (where, sorted(aspaces)))
    return totals, systems


def main():
    path, arena, hblks, hblkhd, class_to = sys.argv[1], *map(int, sys.argv[2:6])
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        fail("not well-formed XML: %s" % e)
    if root.tag != "malloc" or root.get("version") != "1":
        fail('root is <%s version=%r>, not <malloc version="1">' % (root.tag, root.get("version")))
    heaps = root.findall("heap")
    if not heaps:
        fail("no <heap>")
    for i, heap in enumerate(heaps):
        if heap.get("nr") != str(i):
            fail("heap %d has nr=%r" % (i, heap.get("nr")))
        sizes = heap.find("sizes")
        if sizes is None:
            fail("heap %d has no <sizes>" % i)
        tos = set()
        for s in sizes.findall("size"):
            lo, hi, total, count = (number(s, a) for a in ("from", "to", "total", "count"))
            if lo > hi:
                fail("<size from=%d to=%d>: from > to" % (lo, hi))
            if total != count * hi:
                fail("<size to=%d>: total %d is not count %d times the block size" % (hi, total, count))
            tos.add(hi)
        if class_to not in tos:
            fail("no <size> line for the class of %d bytes (have %s)" % (class_to, sorted(tos)))
        check_totals(heap, "heap %d" % i, False)
    totals, systems = check_totals(root, "<malloc>", True)
    if systems["current"] != arena:
        fail("system current %d, mallinfo2 arena %d" % (systems["current"], arena))
    mm = totals["mmap"]
    if number(mm, "count") != hblks or number(mm, "size") != hblkhd:
        fail("mmap total count=%s size=%s, mallinfo2 hblks=%d hblkhd=%d"
             % (mm.get("count"), mm.get("size"), hblks, hblkhd))
    print("check_malloc_info: ok (%d heap, %d size lines)" % (len(heaps), len(tos)))


main()
