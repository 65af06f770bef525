#!/usr/bin/env bash
# test_options_doc.sh: README.md's table of HAKMEM_* options agrees with the
# table in src/options.c, so the documentation cannot drift from the code.
#
#   bash tests/test_options_doc.sh [DUMPER...]
#
# The table is read with tests/unit_options --dump (which compiles
# src/options.c in, so defaults and ranges come out as the compiler sees
# them), from every DUMPER given (default: out/release/tests/unit_options
# and out/debug/tests/unit_options); an option in any build counts, and
# builds may not disagree about one. As a cross-check the option names are
# also read as text from src/options.c ({ "NAME", ... lines).
#
# The rows of the README's "Options" section,
#   | `HAKMEM_NAME` | default | accepted | meaning |
# must be exactly one per option, with
#   default   the default: the number, or the word of a word option
#   accepted  "MIN .. MAX", or every accepted value listed ("0, 1";
#             "adaptive, eager, lazy"); a number may be written 2^N
#   meaning   the table's one-line doc (backticks and spacing aside)
# On a mismatch the script prints the rows the table implies.
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2

fails=0
fail() {
    echo "test_options_doc: FAIL: $*" >&2
    fails=$((fails + 1))
}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-optdoc.XXXXXX") || exit 2
trap 'rm -rf "$TMP"' EXIT

dumpers=("$@")
if [ ${#dumpers[@]} -eq 0 ]; then
    dumpers=(out/release/tests/unit_options out/debug/tests/unit_options)
fi

# ---- the code's table ------------------------------------------------------
: >"$TMP/all"
for d in "${dumpers[@]}"; do
    if [ ! -x "$d" ]; then
        fail "$d is missing (run make test, which builds it)"
        continue
    fi
    if ! "$d" --dump >"$TMP/one" 2>"$TMP/one.err"; then
        fail "$d --dump failed: $(cat "$TMP/one.err")"
        continue
    fi
    cat "$TMP/one" >>"$TMP/all"
done
[ -s "$TMP/all" ] || {
    echo "test_options_doc: no option table read" >&2
    exit 1
}
# one line per option, in the table's order; the same option must read the
# same in every build
awk '!seen[$0]++' "$TMP/all" >"$TMP/table"
dups=$(cut -f1 "$TMP/table" | LC_ALL=C sort | uniq -d)
for n in $dups; do
    fail "HAKMEM_$n differs between builds: $(grep "^$n	" "$TMP/table" | tr '\t' ' ' | tr '\n' ';')"
done

# the names as text in src/options.c
text_names=$(sed -n 's/^[[:space:]]*{[[:space:]]*"\([A-Z][A-Z0-9_]*\)"[[:space:]]*,.*/\1/p' src/options.c | LC_ALL=C sort -u)
table_names=$(cut -f1 "$TMP/table" | LC_ALL=C sort -u)
if [ "$text_names" != "$table_names" ]; then
    fail "the names in src/options.c's text and in the compiled table differ:"
    diff <(echo "$text_names") <(echo "$table_names") | sed 's/^/    /' >&2
fi

# ---- the README's rows -------------------------------------------------------
# the "Options" section: from a heading "Options" to the next heading;
# its rows whose first cell is `HAKMEM_...`, as NAME<TAB>DEFAULT<TAB>ACCEPTED<TAB>MEANING
awk '
    /^#+[[:space:]]+Options[[:space:]]*$/ { in_sec = 1; found = 1; next }
    /^#/ { in_sec = 0 }
    in_sec && /^\|[[:space:]]*`?HAKMEM_/ {
        line = $0
        sub(/^\|/, "", line)
        sub(/\|[[:space:]]*$/, "", line)
        n = split(line, c, "|")
        # the meaning may itself hold a "|": it is everything after cell 3
        meaning = c[4]
        for (i = 5; i <= n; i++) meaning = meaning "|" c[i]
        for (i = 1; i <= 3; i++) { gsub(/`/, "", c[i]); gsub(/^[[:space:]]+|[[:space:]]+$/, "", c[i]) }
        sub(/^HAKMEM_/, "", c[1])
        print c[1] "\t" c[2] "\t" c[3] "\t" meaning
    }
    END { if (!found) print "NO-SECTION" }
' README.md >"$TMP/readme"
if grep -qx NO-SECTION "$TMP/readme"; then
    echo "test_options_doc: FAIL: README.md has no \"Options\" section" >&2
    exit 1
fi
readme_names=$(cut -f1 "$TMP/readme" | LC_ALL=C sort)
for n in $(uniq -d <<<"$readme_names"); do
    fail "README.md lists HAKMEM_$n more than once"
done
for n in $(comm -23 <(echo "$table_names") <(uniq <<<"$readme_names")); do
    fail "HAKMEM_$n is in src/options.c but not in README.md's table"
done
for n in $(comm -13 <(echo "$table_names") <(uniq <<<"$readme_names")); do
    fail "README.md lists HAKMEM_$n, which src/options.c does not have"
done

# ---- row by row ------------------------------------------------------------
trim() {
    local s=$1
    s=${s#"${s%%[![:space:]]*}"}
    s=${s%"${s##*[![:space:]]}"}
    printf '%s' "$s"
}

# num TEXT: the number TEXT writes (decimal, or B^E), or fails
num() {
    local t
    t=$(trim "$1")
    if [[ "$t" =~ ^(-?)([0-9]+)$ ]]; then
        echo "${BASH_REMATCH[1]}$((10#${BASH_REMATCH[2]}))"
    elif [[ "$t" =~ ^([0-9]+)\^([0-9]+)$ ]]; then
        echo $((10#${BASH_REMATCH[1]} ** 10#${BASH_REMATCH[2]}))
    else
        return 1
    fi
}

# the doc as compared: no backticks, spacing collapsed, no final period
norm_doc() {
    local s
    s=$(printf '%s' "$1" | tr -d '`' | tr -s '[:space:]' ' ')
    s=$(trim "$s")
    printf '%s' "${s%.}"
}

# shown NUMBER: how the expected row writes a number
shown() {
    local v=$1 e
    for ((e = 32; e < 63; e++)); do
        if [ "$v" = $((1 << e)) ]; then
            echo "2^$e"
            return
        fi
    done
    echo "$v"
}

expected_rows() {
    local name def min max words doc acc
    while IFS=$'\t' read -r name def min max words doc; do
        if [ "$words" != - ]; then
            acc=${words//,/, }
        elif [ $((max - min)) -le 2 ]; then
            acc=$(seq -s ', ' "$min" "$max")
        else
            acc="$(shown "$min") .. $(shown "$max")"
        fi
        # shellcheck disable=SC2016  # the backticks are markdown
        printf '| `HAKMEM_%s` | %s | %s | %s |\n' "$name" "$def" "$acc" "$doc"
    done <"$TMP/table"
}

while IFS=$'\t' read -r name def min max words doc; do
    row=$(grep -m1 "^$name	" "$TMP/readme") || continue
    IFS=$'\t' read -r _ r_def r_acc r_doc <<<"$row"
    # default
    if [ "$words" != - ]; then
        [ "$r_def" = "$def" ] || fail "HAKMEM_$name: README.md's default is '$r_def', src/options.c's is '$def'"
    else
        v=$(num "$r_def") || v="not a number"
        [ "$v" = "$def" ] || fail "HAKMEM_$name: README.md's default is '$r_def', src/options.c's is $def"
    fi
    # accepted values
    if [[ "$r_acc" == *..* ]]; then
        lo=$(num "${r_acc%%..*}") || lo='?'
        hi=$(num "${r_acc#*..}") || hi='?'
        if [ "$words" != - ]; then
            fail "HAKMEM_$name: README.md gives a range, '$r_acc', for a word option ($words)"
        elif [ "$lo" != "$min" ] || [ "$hi" != "$max" ]; then
            fail "HAKMEM_$name: README.md accepts '$r_acc', src/options.c $min .. $max"
        fi
    else
        IFS=, read -r -a items <<<"$r_acc"
        got=()
        for it in "${items[@]}"; do
            it=$(trim "$it")
            [ "$words" = - ] && { it=$(num "$it") || it="?$it"; }
            got+=("$it")
        done
        got_s=$(printf '%s\n' "${got[@]}" | LC_ALL=C sort)
        if [ "$words" != - ]; then
            want_s=$(tr ',' '\n' <<<"$words" | LC_ALL=C sort)
        elif [ $((max - min)) -le 16 ]; then
            want_s=$(seq "$min" "$max" | LC_ALL=C sort)
        else
            want_s="a range MIN .. MAX"
        fi
        [ "$got_s" = "$want_s" ] ||
            fail "HAKMEM_$name: README.md accepts '$r_acc', src/options.c $(if [ "$words" != - ]; then echo "$words"; else echo "$min .. $max"; fi)"
    fi
    # meaning
    [ "$(norm_doc "$r_doc")" = "$(norm_doc "$doc")" ] ||
        fail "HAKMEM_$name: README.md's meaning differs from src/options.c's doc:
    README.md:     $(norm_doc "$r_doc")
    src/options.c: $(norm_doc "$doc")"
done <"$TMP/table"

if [ "$fails" -gt 0 ]; then
    echo "test_options_doc: $fails mismatch(es). The rows src/options.c implies:" >&2
    expected_rows >&2
    exit 1
fi
echo "test_options_doc: $(wc -l <"$TMP/table") options, README.md agrees with src/options.c"
