#!/usr/bin/env bash
# Creates the BigQuery emulator's own environment in .venvs/emu from its lock file, offline-ready:
# DuckDB's extensions go into a private HOME (.venvs/emu/home) so the emulator never downloads them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${1:-.venvs/emu}
lock="$here/requirements.lock"
stamp="$venv/.lock-sha256"
want=$(sha256sum "$lock" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi
uv venv -q --allow-existing -p 3.11 "$venv"
VIRTUAL_ENV="$venv" uv pip sync -q --require-hashes "$lock"
ext="$venv/home/.duckdb/extensions/v1.5.5/linux_amd64"
mkdir -p "$ext"
find "$venv/lib" -path '*duckdb_extension_*' -name '*.duckdb_extension' -exec cp {} "$ext/" \;
ls "$ext"/spatial.duckdb_extension "$ext"/avro.duckdb_extension >/dev/null
echo "$want" > "$stamp"
echo "BigQuery emulator ready in $venv"
