#!/usr/bin/env bash
# Fails when a C file drifts from .clang-format or a line is over 100 columns.
set -euo pipefail
cd "$(dirname "$0")/.."

bad=0
for f in $(git ls-files '*.c' '*.h'); do
    if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
        echo "format: $f differs from .clang-format (run clang-format -i $f)"
        bad=1
    fi
done
long=$(git ls-files '*.c' '*.h' '*.py' '*.sh' | xargs awk 'length > 100 {print FILENAME ":" FNR}')
if [ -n "$long" ]; then
    echo "format: lines over 100 columns:"
    echo "$long"
    bad=1
fi
[ "$bad" -eq 0 ] && echo "format: all C sources match .clang-format"
exit "$bad"
