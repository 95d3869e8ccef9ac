#!/usr/bin/env bash
# `make install DESTDIR=...`: the files land where the unit expects them, the example config is valid for
# `serve --check`, systemd accepts the unit, and the unit's ExecStart line (pointed at the staged files) really
# serves the fixture model with the API keys from the environment file, then stops cleanly on SIGTERM.
# Usage: install_test.sh SOURCE_DIR BUILD_DIR FIXTURES_DIR
set -euo pipefail
src=$1 build=$2 fixtures=$3
model="$fixtures/models/llama3-tiny/llama3-tiny-f32.gguf"
stage=$(mktemp -d)
server_pid=
cleanup() {
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then kill -KILL "$server_pid"; fi
  rm -rf "$stage"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

make -s -C "$src" install BUILD_DIR="$build" DESTDIR="$stage" PREFIX=/usr/local >/dev/null
bin=$stage/usr/local/bin/pensieve
unit=$stage/usr/local/lib/systemd/system/pensieve.service
config=$stage/etc/pensieve/config.json
envfile=$stage/etc/pensieve/pensieve.env
[[ -x $bin ]] || fail "no executable $bin"
cmp -s "$bin" "$build/bin/pensieve" || fail "the installed binary is not the built one"
for f in "$unit" "$config" "$stage/etc/pensieve/config.example.json" "$envfile"; do [[ -f $f ]] || fail "missing $f"; done
[[ $(stat -c %a "$envfile") == 600 ]] || fail "$envfile must be mode 600, is $(stat -c %a "$envfile")"
grep -qx 'ExecStart=/usr/local/bin/pensieve serve --config /etc/pensieve/config.json' "$unit" ||
  fail "ExecStart does not run the installed binary on /etc/pensieve/config.json"
grep -qx 'EnvironmentFile=-/etc/pensieve/pensieve.env' "$unit" || fail "no EnvironmentFile line"
if grep -q '@' "$unit"; then fail "unfilled placeholder in the unit"; fi

# The example config names a model this machine does not have: --check must say so, naming it...
if out=$("$bin" serve --config "$config" --check 2>&1); then fail "--check accepted a missing model: $out"; fi
grep -q 'no such file: /var/lib/pensieve/models/' <<<"$out" || fail "unexpected --check error: $out"
# ...and accept every other key of it once the model is one that exists (the command line overrides the file).
out=$("$bin" serve --config "$config" --model "$model" --check) || fail "--check refused the example config: $out"
grep -q 'configuration OK' <<<"$out" || fail "no OK line: $out"
grep -q 'log json' <<<"$out" || fail "the example's log-format did not arrive: $out"

# A second install keeps an edited config.json and env file.
echo '{"port": 9999}' >"$config"
echo 'PENSIEVE_API_KEY=kept' >"$envfile"
make -s -C "$src" install BUILD_DIR="$build" DESTDIR="$stage" PREFIX=/usr/local >/dev/null
[[ $(cat "$config") == '{"port": 9999}' ]] || fail "reinstall overwrote config.json"
[[ $(cat "$envfile") == 'PENSIEVE_API_KEY=kept' ]] || fail "reinstall overwrote pensieve.env"

# systemd's own check of the unit (the staged binary stands in for /usr/local/bin: verify wants it to exist).
if command -v systemd-analyze >/dev/null; then
  staged_unit=$stage/pensieve.service
  sed -e "s|/usr/local/bin/pensieve|$bin|g" "$unit" >"$staged_unit"
  verify=$(systemd-analyze verify "$staged_unit" 2>&1) || fail "systemd-analyze verify: $verify"
  if grep -qi 'pensieve.service' <<<"$verify"; then fail "systemd-analyze verify warns: $verify"; fi
else
  echo "note: systemd-analyze is not installed: the unit is checked only by running its ExecStart line"
fi

# Run the ExecStart line as systemd would: environment from the EnvironmentFile, config from the staged /etc.
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
exec_start=${exec_start//\/usr\/local\/bin\/pensieve/$bin}
exec_start=${exec_start//\/etc\/pensieve/$stage/etc/pensieve}
printf '{"model": "%s", "alias": ["svc"], "port": 0, "parallel": 2, "ctx-size": 256, "log-format": "json"}\n' "$model" >"$config"
printf 'PENSIEVE_API_KEY=first-key,second-key\n' >"$envfile"
log=$stage/server.log
(set -a; source "$envfile"; set +a; exec $exec_start) >"$log.out" 2>"$log" &
server_pid=$!
url=
for _ in $(seq 1 200); do
  url=$(sed -n 's|^pensieve: listening on \(http://[^ ]*\)$|\1|p' "$log.out")
  [[ -n $url ]] && curl -sf "$url/health" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || fail "the server exited: $(cat "$log")"
  sleep 0.1
done
curl -sf "$url/health" >/dev/null || fail "never became ready: $(cat "$log")"
code=$(curl -s -o /dev/null -w '%{http_code}' "$url/v1/models")
[[ $code == 401 ]] || fail "no key: want 401, got $code"
models=$(curl -sf -H 'Authorization: Bearer second-key' "$url/v1/models") || fail "the second key from the env file was refused"
grep -q '"svc"' <<<"$models" || fail "the config's alias is not served: $models"
kill -TERM "$server_pid"
status=0
wait "$server_pid" || status=$?
server_pid=
[[ $status == 0 ]] || fail "exit status $status after SIGTERM: $(cat "$log")"
grep -q '"message":"stopped"' "$log" || fail "no JSON 'stopped' line: $(cat "$log")"
echo "ok: install layout, --check, unit, ExecStart serving from the config with keys from the env file"
