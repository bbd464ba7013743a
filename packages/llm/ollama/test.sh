#!/usr/bin/env bash
# The ollama server starts, answers its API (version, an empty model list) and stops.
set -euo pipefail
ollama --version
export OLLAMA_HOST="127.0.0.1:$((20000 + RANDOM % 20000))"
export OLLAMA_MODELS="$(mktemp -d)"
ollama serve > /tmp/ollama.log 2>&1 &
server=$!
trap 'kill ${server} 2>/dev/null || true' EXIT
for _ in $(seq 60); do
  if curl -fsS "http://${OLLAMA_HOST}/api/version"; then break; fi
  sleep 0.5
done
echo
curl -fsS "http://${OLLAMA_HOST}/api/tags" | tee /tmp/tags.json
grep -q '"models":\[\]' /tmp/tags.json
if ls /dev/nvidia[0-9]* /dev/nvhost-ctrl-gpu >/dev/null 2>&1; then
  grep -iE "inference compute|cuda" /tmp/ollama.log || { cat /tmp/ollama.log; exit 1; }
else
  echo "SKIP gpu check: no NVIDIA GPU device is visible in this container"
fi
echo "ollama ok"
