#!/usr/bin/env bash
# Regenerates the man page and the shell completions from the CLI definition (src/cli.rs).
# tests/cli.rs fails when the committed files are not what this writes.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --locked
bin=target/debug/anycastd
mkdir -p doc/completions
rm -f doc/*.1
"$bin" manpages doc
"$bin" completions bash > doc/completions/anycastd.bash
"$bin" completions zsh > doc/completions/_anycastd
"$bin" completions fish > doc/completions/anycastd.fish
echo "gen-docs: doc/anycastd.1 and doc/completions/ written"
