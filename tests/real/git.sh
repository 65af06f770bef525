#!/usr/bin/env bash
# git.sh: git under hakmem (issue 6, "Real programs").  A generated
# repository: 400 files of 200 lines in 20 directories, six commits that
# each change some lines of every file, then gc --aggressive (delta search
# on two threads), fsck, log -p, grep, diff and blame.  Names and dates are
# fixed, so the commit id and every output are known (git.expected).
. "$(dirname "$0")/common.sh"
need git git
check_hakmem
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null HOME="$WORK"
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.org GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.org
export GIT_AUTHOR_DATE='2020-01-01T00:00:00Z' GIT_COMMITTER_DATE='2020-01-01T00:00:00Z'
cd "$WORK"
git init -q -b main repo
cd repo
git config pack.threads 2
for d in $(seq 0 19); do mkdir "d$d"; done
for c in 1 2 3 4 5 6; do
    awk -v c="$c" 'BEGIN {
        for (f = 0; f < 400; f++) {
            fn = "d" (f % 20) "/f" f ".txt"
            for (l = 0; l < 200; l++)
                print "file", f, "line", l, ((l * 7 + f * c) % 13 == 0 ? "changed " c : "same") > fn
            close(fn)
        }
    }'
    git add -A
    git commit -q -m "commit $c"
done
{
    git gc -q --aggressive
    git fsck --no-progress --strict 2>&1
    git count-objects -v | grep -E '^(count|in-pack|packs):'
    git log --oneline | wc -l
    git log -p --stat | md5sum | cut -d' ' -f1
    git rev-parse HEAD
    git grep -c 'changed 6' | wc -l
    git diff HEAD~5 HEAD --shortstat
    git blame -s d3/f23.txt | md5sum | cut -d' ' -f1
} >"$WORK/out"
expect git "$WORK/out"
echo "git: ok"
