#!/bin/sh
# Replays the seed corpus of one fuzz entry through its built target, in a build with or
# without --enable-fuzzing (libFuzzer runs the corpus once with -runs=0; the replay driver
# ignores the option). Usage, from a build directory or with top_builddir/top_srcdir set:
#   tests/fuzz/run-corpus.sh ENTRY        e.g. tests/fuzz/run-corpus.sh wire
set -e
entry=${1:?usage: run-corpus.sh ENTRY}
here=$(cd "$(dirname "$0")/../.." && pwd)
srcdir=${top_srcdir:-$here}
builddir=${top_builddir:-.}
target="$builddir/tests/fuzz/fuzz_$entry"
corpus="$srcdir/tests/fuzz/corpus/$entry"
[ -x "$target" ] || { echo "run-corpus: $target is not built" >&2; exit 1; }
[ -d "$corpus" ] || { echo "run-corpus: no corpus $corpus" >&2; exit 1; }
exec "$target" -runs=0 "$corpus"
