#!/bin/sh
# make-corpus.sh BUILD_DIR OUTDIR: seed corpora for the fuzz targets, made
# from the real snapshot under tests/data/ (or $SNAPARC_FUZZ_SNAPSHOT, a
# snapshot directory holding 00000000).
#
#   OUTDIR/fuzz_wal/     the segment, cut copies of it, and small segments in
#                        the encodings it lacks (see extract_records.c)
#   OUTDIR/fuzz_record/  up to 200 decompressed records of every type
#   OUTDIR/fuzz_lz4dict/ 40 of those records as the archive stores them (LZ4
#                        with and without a dictionary) and as they are,
#                        after a dictionary; see lz4dict_seeds.c
#   OUTDIR/fuzz_xordelta/ 60 of those records behind fuzz_xordelta's control
#                        byte and length (its round trip splits their chunks)
#   OUTDIR/fuzz_recode/  the fuzz_record seeds
#   OUTDIR/fuzz_import/  the fuzz_wal seeds behind fuzz_import's control
#                        word: one segment, and the real one cut into two
#                        segments at page boundaries
#
# BUILD_DIR is the build tree configured with -DSNAPARC_FUZZ=ON (it holds
# tests/fuzz/extract_records and lz4dict_seeds). OUTDIR must not exist.
set -eu

if [ $# -ne 2 ]; then
	echo "usage: $0 BUILD_DIR OUTDIR" >&2
	exit 2
fi
build=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
page=32768

extract=
for p in "$build/tests/fuzz/extract_records" "$build/extract_records"; do
	if [ -x "$p" ]; then extract=$p; break; fi
done
if [ -z "$extract" ]; then
	echo "$0: no extract_records under $build (configure with -DSNAPARC_FUZZ=ON and build)" >&2
	exit 1
fi
lz4seeds=$(dirname "$extract")/lz4dict_seeds

snap=${SNAPARC_FUZZ_SNAPSHOT:-}
if [ -z "$snap" ]; then
	for d in "$(dirname "$here")"/data/*/chunk_snapshot.*/; do
		if [ -f "$d/00000000" ]; then snap=${d%/}; break; fi
	done
fi
if [ -z "$snap" ] || [ ! -f "$snap/00000000" ]; then
	echo "$0: no snapshot under tests/data/*/chunk_snapshot.*/ (set SNAPARC_FUZZ_SNAPSHOT)" >&2
	exit 1
fi
seg=$snap/00000000
size=$(wc -c < "$seg")

if [ -e "$out" ]; then
	echo "$0: $out exists" >&2
	exit 1
fi
mkdir -p "$out/fuzz_wal" "$out/fuzz_record"
work=$out/.work
mkdir "$work"

# Records, a map of the segment, and the small synthetic segments.
"$extract" --segments "$work/segments" "$snap" "$out/fuzz_record" 200 65536 \
	> "$work/records.txt" 2> "$work/extract.log" || { cat "$work/extract.log" >&2; exit 1; }
for kind in plain zstd zstd-nosize lz4; do
	cp "$work/segments/$kind/00000000" "$out/fuzz_wal/segment-$kind"
done

# bytes FROM COUNT: COUNT bytes of the segment from offset FROM
bytes() { tail -c +"$(($1 + 1))" "$seg" | head -c "$2"; }

cp "$seg" "$out/fuzz_wal/segment"
bytes 0 "$page" > "$out/fuzz_wal/first-page"
bytes 0 $((2 * page)) > "$out/fuzz_wal/first-2-pages"
# torn: ends inside a page and, likely, inside a record
bytes 0 $((2 * page + page / 3)) > "$out/fuzz_wal/torn-3rd-page"

# The longest record stored in more than one fragment, with the pages it
# spans. A page may begin with the tail of the record before it, which would
# make the cut fail at once, so the first page is shifted to start at the
# first record that starts in it and zero-padded back to a whole page.
# records.txt: INDEX OFFSET END STORED_LEN FLAGS TYPE LEN FILE
long=$(awk '$3 - $2 > $4 + 7 && $3 - $2 > best { best = $3 - $2; line = $2 " " $3 }
	END { print line }' "$work/records.txt")
if [ -n "$long" ]; then
	long_start=${long% *}
	long_end=${long#* }
	first_page=$((long_start / page * page))
	start=$(awk -v p="$first_page" '$2 >= p { print $2; exit }' "$work/records.txt")
	last_page_end=$(((long_end + page - 1) / page * page))
	[ "$last_page_end" -le "$size" ] || last_page_end=$size
	{
		bytes "$start" $((first_page + page - start))
		head -c $((start - first_page)) /dev/zero
		bytes $((first_page + page)) $((last_page_end - first_page - page))
	} > "$out/fuzz_wal/multi-fragment"
fi

rm -r "$work"
# the push parser reads the same segments, split where each input says
mkdir -p "$out/fuzz_wal_push"
cp "$out"/fuzz_wal/* "$out/fuzz_wal_push/"

# fuzz_import: a 4-byte control word (fuzz_import.c), then the segment bytes:
# all in one segment, and the real segment cut into two at pages 1 to 5
mkdir -p "$out/fuzz_import"
for f in "$out"/fuzz_wal/*; do
	{ printf '\0\0\0\0'; cat "$f"; } > "$out/fuzz_import/$(basename "$f")"
done
for p in 1 2 3 4 5; do
	{ printf '\003%b\0\0' "\\00$p"; cat "$seg"; } > "$out/fuzz_import/segment-cut-page-$p"
done

# fuzz_lz4dict: 40 records spread over those extracted, compressed
mkdir -p "$out/fuzz_lz4dict"
if [ ! -x "$lz4seeds" ]; then
	echo "$0: no $lz4seeds (build the fuzz tree)" >&2
	exit 1
fi
# shellcheck disable=SC2046  # file names without spaces, made above
"$lz4seeds" "$out/fuzz_lz4dict" $(find "$out/fuzz_record" -type f | sort |
	awk '{ f[NR] = $0 } END { for (i = 1; i <= 40 && i <= NR; i++) print f[int((i - 1) * NR / 40) + 1] }') \
	> /dev/null

echo "make-corpus: $(find "$out/fuzz_wal" -type f | wc -l) fuzz_wal (and fuzz_wal_push) seeds," \
	"$(find "$out/fuzz_record" -type f | wc -l) fuzz_record," \
	"$(find "$out/fuzz_import" -type f | wc -l) fuzz_import and" \
	"$(find "$out/fuzz_lz4dict" -type f | wc -l) fuzz_lz4dict seeds from $seg"

# fuzz_xordelta: a control byte, the record's length (le16), the record
mkdir -p "$out/fuzz_xordelta"
i=0
for f in $(find "$out/fuzz_record" -type f | sort | head -n 60); do
	n=$(wc -c < "$f")
	[ "$n" -lt 65536 ] || continue
	{
		printf "\\$(printf %03o $((i * 37 % 256)))"
		printf "\\$(printf %03o $((n % 256)))\\$(printf %03o $((n / 256)))"
		cat "$f"
	} > "$out/fuzz_xordelta/record-$i"
	i=$((i + 1))
done

# fuzz_recode: the records themselves (the series among them recode)
mkdir -p "$out/fuzz_recode"
cp "$out"/fuzz_record/* "$out/fuzz_recode/"
