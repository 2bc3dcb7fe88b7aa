#!/usr/bin/env bash
# The main job, end to end on loopback: the dev gateway over TLS with its own CA, and the
# example bots connecting to it (identify, send_servers, GLOBAL_GUILD_COUNT, close): the C bot,
# the C++, Node.js and Rust bots, then the Python bot and its asyncio twin. Stops everything it started. Run through
# `make demo`, which builds first.
set -euo pipefail
cd "$(dirname "$0")/.."
python=.venv/bin/python3
bot=.build/examples/bot

echo "demo: starting the dev gateway (wss on 127.0.0.1, generated CA)"
coproc GATEWAY { PYTHONPATH=bindings/python exec "$python" -m utilbot_gateway.devserver --tls --heartbeat 5000 --key demo-key; }
trap 'kill "$GATEWAY_PID" 2>/dev/null || true; wait "$GATEWAY_PID" 2>/dev/null || true' EXIT
read -r -t 20 announcement <&"${GATEWAY[0]}" || { echo "demo: the dev gateway did not start" >&2; exit 1; }
url=$("$python" -c 'import json,sys; print(json.loads(sys.argv[1])["url"])' "$announcement")
ca=$("$python" -c 'import json,sys; print(json.loads(sys.argv[1])["ca"])' "$announcement")
echo "demo: dev gateway at $url (CA $ca)"
echo "demo: running $bot ${url}?v=1 demo-key $ca"
timeout 60 "$bot" "${url}?v=1" demo-key "$ca"
echo "demo: running .build/examples/bot-cpp (the C++ wrapper) ${url}?v=1 demo-key $ca"
timeout 60 .build/examples/bot-cpp "${url}?v=1" demo-key "$ca"
echo "demo: running examples/node/bot.js (the Node.js binding) ${url}?v=1 demo-key $ca"
timeout 60 node examples/node/bot.js "${url}?v=1" demo-key "$ca"
echo "demo: running .build/rust/debug/examples/bot (the Rust crate) ${url}?v=1 demo-key $ca"
timeout 60 .build/rust/debug/examples/bot "${url}?v=1" demo-key "$ca"
for example in bot.py async_bot.py; do
    echo "demo: running examples/python/$example ${url}?v=1 demo-key $ca"
    PYTHONPATH=bindings/python timeout 60 "$python" "examples/python/$example" "${url}?v=1" demo-key "$ca"
done
echo "demo: the bots finished cleanly; stopping the dev gateway"
