#!/usr/bin/env bash
# Stops what `npm run demo` started.
cd "$(dirname "$0")/.."
for f in .demo/example.pid .demo/worker.pid .demo/web.pid; do
  [ -f "$f" ] || continue
  pid=$(cat "$f")
  kill "$pid" 2>/dev/null && echo "stopped $(basename "$f" .pid) ($pid)"
  rm -f "$f"
done
