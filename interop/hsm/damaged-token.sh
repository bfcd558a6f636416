#!/usr/bin/env bash
# A damaged SoftHSM2 token is never replaced by a new one. SoftHSM2 skips a token whose
# token.object it cannot read as if it did not exist (a kill while it rewrites that file at
# C_Login can leave it so); with hsm.auto_init privca must then refuse, naming the token
# directory, instead of initialising a fresh, empty token and carrying on without its keys.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
fresh_data_dir
tokens() { find "$DATA/tokens" -mindepth 1 -maxdepth 1 -type d | wc -l; }
privca_cli init >/dev/null 2>&1
check "init creates one token" test "$(tokens)" = 1
check "a second init opens it again" privca_cli init
object=$(find "$DATA/tokens" -name token.object)
cp "$object" "$DATA/token.object.bak"
: >"$object" # the token's own object truncated
privca_cli init >"$DATA/init.out" 2>&1
rc=$?
check "init over the damaged token fails (exit $rc)" test "$rc" != 0
check "  the error names the token directory" grep -q "$DATA/tokens" "$DATA/init.out"
check "  no new token was created" test "$(tokens)" = 1
timeout 60 "$PRIVCA_BIN" --config "$CONFIG" --data-dir "$DATA" serve >"$DATA/serve.out" 2>&1
rc=$?
check "serve refuses to start too (exit $rc)" test "$rc" != 0 -a "$rc" != 124
cp "$DATA/token.object.bak" "$object"
check "the restored token opens with its keys" privca_cli init
sed -n '1,3p' "$DATA/init.out" | sed 's/^/      /'
finish
