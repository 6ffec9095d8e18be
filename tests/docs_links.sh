#!/bin/sh
# The documents point at what exists: every relative link of README.md and
# docs/*.md names a file or folder of the source tree, and so does every
# path of the tree they quote in backquotes (`src/...`, `tests/...`).
# Usage: docs_links.sh SOURCE_DIR
#
# Links leave out URLs (scheme:...) and in-page anchors (#...); a link's
# own anchor is cut off and the file checked. Quoted paths are those that
# start with a folder of the tree; a pattern (`*`, `<layer>`) is skipped.
# Fenced code blocks are skipped: they show commands and programs.
#
# PENDING names documents written on another branch that README.md
# already links to: until they land a link to one is reported, not
# failed. Drop a name once its file is in (none pending now).
set -eu
src=${1:?source dir}
cd "$src"

PENDING=""
fails=0
pending=0

# normpath DIR TARGET: TARGET relative to DIR, with ./ and dir/.. folded.
normpath() {
	printf '%s/%s\n' "$1" "$2" | awk -F/ '{
		n = 0
		for (i = 1; i <= NF; i++) {
			if ($i == "" || $i == ".") continue
			if ($i == ".." && n > 0 && p[n] != "..") { n--; continue }
			p[++n] = $i
		}
		s = ""
		for (i = 1; i <= n; i++) s = s (i > 1 ? "/" : "") p[i]
		print (s == "" ? "." : s)
	}'
}

# prose FILE: the file without its fenced code blocks.
prose() {
	awk '/^[ \t]*```/ { fence = !fence; next } !fence' "$1"
}

check() { # document, what, path as written, path from the root
	if [ -e "$4" ]; then
		return 0
	fi
	for p in $PENDING; do
		if [ "$4" = "$p" ]; then
			echo "pending: $1: $2 $3 (written on another branch)"
			pending=$((pending + 1))
			return 0
		fi
	done
	echo "FAIL: $1: $2 $3: no such file ($4)"
	fails=$((fails + 1))
}

docs=README.md
for f in docs/*.md; do
	[ -f "$f" ] && docs="$docs $f"
done

checked=0
for doc in $docs; do
	dir=$(dirname "$doc")
	# [text](target): inline code spans removed first, so that a quoted
	# `a](b)` is no link.
	links=$(prose "$doc" | sed 's/`[^`]*`//g' | grep -o '\]([^) ]*)' | sed 's/^](//; s/)$//') || true
	for t in $links; do
		case $t in
		\#* | *:*) continue ;;
		esac
		path=${t%%#*}
		[ -n "$path" ] || continue
		check "$doc" link "$t" "$(normpath "$dir" "$path")"
		checked=$((checked + 1))
	done
	quoted=$(prose "$doc" | grep -o '`[^`]*`' | tr -d '`' |
		grep -E '^(src|include|tests|bench|examples|scripts|tools|docs)/[A-Za-z0-9_./-]*$') || true
	for q in $quoted; do
		check "$doc" path "$q" "$(normpath . "$q")"
		checked=$((checked + 1))
	done
done

echo "$checked links and paths checked in $(echo $docs | wc -w) documents; $pending pending, $fails missing"
[ "$fails" -eq 0 ]
