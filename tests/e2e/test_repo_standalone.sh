#!/usr/bin/env bash
# The repository stands alone: a reader finds every contract in it, and no
# file depends on anything outside the checkout except what scripts/deps.sh
# installs.
#
# 1. No file of the checkout (tracked, or new and not ignored; binary data
#    skipped) refers to a document that is not in it — the design notes the
#    project started from — or to a path outside the checkout:
#      - a design-notes name (the upper-case file stems below) or a `..`
#        path climbing out of the checkout into a sibling notes directory;
#      - an absolute path under a root that holds per-user, per-site or
#        per-machine files, never part of an install (DENY_ROOTS), alone or
#        with more components;
#      - an absolute path of two or more components whose first one is not
#        in the allow-list (ALLOW_ROOTS, plus the checkout's own top-level
#        entries).
#    Every hit is printed as file:line: text.  The scanner is first run on a
#    scratch repository with known good and bad lines, so it is shown to
#    catch what it must and to pass what it may.
# 2. The contract page (docs/CONTRACTS.md) names every environment variable
#    of common/config.c (the README's table too), every rejection reason of
#    importer/validate.c in the order the code checks them, and every Redis
#    key name of common/keys.h.
# 3. Every relative link of the Markdown pages points to a file that exists.
. "$TXAGG_ROOT/tests/lib/tap.sh"
cd "$TXAGG_ROOT" || exit 1

# Roots where per-user, per-site or per-machine files live (home
# directories, removable and site mounts, the development machines' own
# work and shared areas): no Debian system and no txagg image provides
# them, so nothing of txagg may name them, not even alone (a bare root).
DENY_ROOTS="home root Users mnt media srv work shared"

# First components an absolute path of the product may have:
#  - the operating system's own hierarchy (FHS), present with the same
#    meaning on every Debian machine and in every Debian-based image: the
#    programs and tools we call (/usr/bin/python3), their configuration
#    (/etc/apt), kernel interfaces (/proc, /sys, /dev), scratch space (/tmp),
#    runtime and state directories of the servers we drive (/run, /var),
#    CNI's plugin directory the kubelet writes to (/opt/cni);
#  - directories the project's own containers define: the data volumes of
#    Redis and MongoDB and the compose importer's input (/data), the
#    Kubernetes importer's claim (/import), the Dockerfile's build output
#    (/out);
#  - paths that are not files at all: URL paths of the HTTP endpoints we
#    serve or poll (a request for /health/x must be answered 404;
#    FerretDB's /debug/readyz) and JSON-patch paths into Kubernetes objects
#    (/spec/template/...).
# A path whose first component is a top-level entry of the checkout
# ("$ROOT" + "/tests/e2e", Makefile's $(BUILD)/tests/...) is the checkout's
# own, appended to its root; those entries are added at run time.
ALLOW_ROOTS="bin dev etc lib lib64 opt proc run sbin sys tmp usr var
             data import out
             stats health ready metrics docs debug spec"

# The names of the design notes, spelled so that this file does not match.
NOTES_RE='\bDESIG[N]\b|\bRECIPE[S]\b|\.\./share[d]\b'
# An absolute path at the start of a word: after the start of the line, a
# blank, an opening quote or a separator; never after a name or a closing
# quote ("$dir"/root/... is a path inside a scratch directory).
PATH_RE='(?:^|(?<=[\s'"'"'`(=:,;\[{<>|])|(?<=^")|(?<=[\s=(:,\[{]"))/[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.*-]+)?'

# repo_files DIR — the files of the checkout at DIR, NUL-separated: tracked
# ones that exist, and new ones git does not ignore.
repo_files() {
    git -c safe.directory="$1" -C "$1" ls-files -z --cached --others --exclude-standard
}

# outside_refs DIR — print "file:line: what" for every reference from the
# checkout at DIR to something outside it; nothing when there is none.
outside_refs() {
    local dir=$1 own
    own=$(repo_files "$dir" | tr '\0' '\n' | cut -d/ -f1 | sort -u | tr '\n' ' ')
    (
        cd "$dir" || exit 1
        # grep -I skips binary files; -s the tracked files deleted from the tree.
        repo_files "$dir" | xargs -0 -r grep -sInHP -e "$NOTES_RE" |
            awk -F: '{ f = $1; l = $2; sub(/^[^:]*:[^:]*:/, ""); printf "%s:%s: refers to notes outside the repository: %s\n", f, l, $0 }'
        repo_files "$dir" | xargs -0 -r grep -sIonHP -e "$PATH_RE" |
            awk -F: -v deny="$DENY_ROOTS" -v allow="$ALLOW_ROOTS $own" '
                BEGIN {
                    n = split(deny, d, /[ \n]+/); for (i = 1; i <= n; i++) if (d[i] != "") denied[d[i]] = 1
                    n = split(allow, a, /[ \n]+/); for (i = 1; i <= n; i++) if (a[i] != "") allowed[a[i]] = 1
                }
                {
                    f = $1; l = $2; p = $0; sub(/^[^:]*:[^:]*:/, "", p)
                    split(p, c, "/"); multi = p ~ /^\/[^\/]+\/./
                    if (c[2] in denied) printf "%s:%s: path outside the checkout: %s\n", f, l, p
                    else if (multi && !(c[2] in allowed)) printf "%s:%s: absolute path under an unknown root: %s\n", f, l, p
                }'
    )
}

# --- 1a. the scanner, on a scratch repository ---------------------------------
scratch=$(mktemp -d "${TXAGG_TEST_TMP:-/tmp}/standalone.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
git -C "$scratch" init -q
mkdir -p "$scratch/tests/e2e" "$scratch/docs"
echo 'check "true" true' >"$scratch/tests/e2e/test_x.sh"
# Bad lines, built from pieces so that this file itself stays clean.
printf 'The contracts are in %s.md.\n' "DESIG""N" >"$scratch/docs/a.md"
printf 'see ../%s/notes\n' "share""d" >"$scratch/docs/b.md"
printf '# docs: /%s/shared/notes.md\n' "wo""rk" >"$scratch/lib.sh"
printf 'static const char *p = "/%s/user/x";\n' "ho""me" >"$scratch/x.c"
printf 'cd /%s\n' "ro""ot" >"$scratch/y.sh"
printf 'open("/%s/x.csv")\n' "srcdata" >"$scratch/z.py"
# Good lines: system paths, container paths, URL paths, checkout paths,
# paths inside a scratch directory, awk patterns, closing tags.
cat >"$scratch/good.sh" <<'EOF'
/usr/bin/python3 - </dev/null; cat /proc/self/status /etc/apt/sources.list.d/x.sources
TMP=$(mktemp -d /tmp/txagg-test.XXXXXX); ls /data/db /import/a.csv /var/lib/x /opt/cni/bin
rm -f "$dir"/root/.bash_history "$work/debs/root/usr/bin/etcd"
for p in /nope /stats/ /health/x; do curl "http://127.0.0.1:8000/stats?from_date=x"; done
awk '/VmRSS/ {print $2}' "/proc/$pid/status"; echo "$ROOT"/tests/e2e; x = root + "/tests/e2e"
echo '<td>/x</td>' path: /spec/template/spec/containers/0/imagePullPolicy ~/.cache/txagg
EOF
printf 'x\0/%s/y %s.md\n' "ho""me" "DESIG""N" >"$scratch/blob.bin"
git -C "$scratch" add -A
got=$(outside_refs "$scratch")
printf '%s\n' "$got" | sed 's/^/# scanner on the scratch repository: /'
is "$(printf '%s\n' "$got" | cut -d: -f1 | sort -u | tr '\n' ' ')" "docs/a.md docs/b.md lib.sh x.c y.sh z.py " \
    "the scanner reports exactly the bad lines of a scratch repository (not good.sh, not the binary blob)"
like "$got" '^lib\.sh:1: ' "a hit is printed as file:line"

# --- 1b. the checkout -----------------------------------------------------------
nfiles=$(repo_files "$TXAGG_ROOT" | tr -cd '\0' | wc -c)
check "the checkout's files can be listed (git ls-files: $nfiles files)" [ "$nfiles" -gt 100 ]
hits=$(outside_refs "$TXAGG_ROOT")
[ -z "$hits" ] || printf '%s\n' "$hits" | sed 's/^/#   /' >&2
is "$(printf '%s' "$hits" | grep -c .)" 0 \
    "no file of the checkout refers to the design notes or to a path outside the checkout"

# --- 2. the contract page names every contract of the code --------------------------
contracts=docs/CONTRACTS.md
check "$contracts exists" test -s "$contracts"
vars=$(sed -n 's/^ *{"\([A-Z_]*\)", .*/\1/p' common/config.c)
check "common/config.c lists the variables (found $(echo $vars | wc -w))" [ "$(echo $vars | wc -w)" -ge 20 ]
missing= missing_readme=
for v in $vars; do
    grep -qs "\`$v\`" "$contracts" || missing+=" $v"
    grep -q "^| \`$v\` |" README.md || missing_readme+=" $v"
done
is "${missing:-none}" none "$contracts names every variable of common/config.c"
is "${missing_readme:-none}" none "README.md's configuration table lists every variable of common/config.c"

reasons=$(grep -o '"[a-z_]*"' <(grep -A2 'reason_names\[REJECT_NREASONS\] = {' importer/validate.c) | tr -d '"' | grep -v '^none$')
check "importer/validate.c names the rejection reasons (found $(echo $reasons | wc -w))" [ "$(echo $reasons | wc -w)" -ge 6 ]
documented=$(sed -n 's/^[0-9]\{1,\}\. `\([a-z_]*\)`.*/\1/p' "$contracts" 2>/dev/null)
is "$(echo $documented)" "$(echo $reasons)" \
    "$contracts lists the rejection reasons as a numbered list in the order importer/validate.c checks them"

keys=$(sed -n 's/^#define KEYS_[A-Z_]* "\([^"]*\)".*/\1/p' common/keys.h)
check "common/keys.h names the keys (found $(echo $keys | wc -w))" [ "$(echo $keys | wc -w)" -ge 10 ]
missing=
for k in $keys; do grep -qsF "\`$k" "$contracts" || missing+=" $k"; done
is "${missing:-none}" none "$contracts names every key and key prefix of common/keys.h"

# --- 3. links between the pages ------------------------------------------------------
broken=
while IFS= read -r -d '' md; do
    case $md in *.md) ;; *) continue ;; esac
    [ -f "$md" ] || continue
    for target in $(grep -oE '\]\([^)#[:space:]]+' "$md" | sed 's/^](//'); do
        case $target in http://* | https://* | mailto:*) continue ;; esac
        [ -e "$(dirname "$md")/$target" ] || broken+=" $md->$target"
    done
done < <(repo_files "$TXAGG_ROOT")
is "${broken:-none}" none "every relative link of the Markdown pages points to a file of the checkout"

done_testing
