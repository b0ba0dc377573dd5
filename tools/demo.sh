#!/usr/bin/env bash
# `npm run demo`: install what is missing, reach (or start) Postgres and Redis, migrate, seed the demo user and team,
# build and start the web app and the worker, enqueue the demo sweep, and print the URL.
# Stop everything with `npm run demo:stop`. Logs are in .demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
export NX_DAEMON=false NX_NO_CLOUD=true NX_TUI=false NEXT_TELEMETRY_DISABLED=1
export DATABASE_URL="${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/aft}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
PORT="${PORT:-3000}"
HOST="${HOST:-127.0.0.1}"
# shellcheck source=lib/demo-secrets.sh
. tools/lib/demo-secrets.sh
secure_demo_dir .demo

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "▶ installing dependencies (npm ci)"
  npm ci --no-audit --no-fund
fi

echo "▶ services"
bash tools/services.sh

echo "▶ migrations"
npx prisma migrate deploy >/dev/null
SEED=$(npx tsx prisma/seed.ts)
field() { node -e "console.log(JSON.parse(process.argv[1])[process.argv[2]])" "$SEED" "$1"; }
KEY=$(field apiKey)
DEMO_EMAIL=$(field email)
DEMO_PASSWORD=$(field password)
# the secret that signs session cookies: made once, kept in .demo/ (git-ignored)
ensure_auth_secret .demo
export AFT_AUTH_SECRET="${AFT_AUTH_SECRET:-$(cat .demo/auth-secret)}"

echo "▶ building the web app"
npx next build apps/web >.demo/build.log 2>&1 || { tail -40 .demo/build.log; exit 1; }

bash tools/demo-stop.sh >/dev/null 2>&1 || true

echo "▶ starting web on http://$HOST:$PORT and the worker"
nohup node apps/web/server.mjs -H "$HOST" -p "$PORT" >.demo/web.log 2>&1 &
echo $! >.demo/web.pid
AFT_URL="http://127.0.0.1:$PORT" AFT_ARTIFACT_DIR=.demo/artifacts nohup node --import tsx apps/worker/src/main.ts >.demo/worker.log 2>&1 &
echo $! >.demo/worker.pid

for _ in $(seq 1 120); do
  curl -fsS -o /dev/null "http://127.0.0.1:$PORT/sign-in" 2>/dev/null && break
  sleep 0.5
done
curl -fsS -o /dev/null "http://127.0.0.1:$PORT/sign-in" || { echo "web did not start; see .demo/web.log"; tail -20 .demo/web.log; exit 1; }

# The demo sweep: one VFT parent, then AFT none/detach/boundary, DPO and PRO with and without a constraint
# (about 7 minutes on two cores). The worker trains it; the dashboard shows it live.
AFT_URL="http://127.0.0.1:$PORT" AFT_API_KEY="$KEY" node --import tsx tools/examples/launch-sweep.ts tools/examples/demo-sweep.json \
  >.demo/sweep.json || { echo "could not launch the demo sweep"; exit 1; }
SWEEP=$(node -e "console.log(JSON.parse(require('fs').readFileSync('.demo/sweep.json','utf8')).sweepId)")

cat <<MSG

  AFT Lab is running:   http://$HOST:$PORT
  Sign in as $DEMO_EMAIL with password $DEMO_PASSWORD (or create your own account there)
  Demo sweep (VFT → AFT/DPO/PRO with and without a constraint, ~4 min): http://$HOST:$PORT/sweeps/$SWEEP
  API key (demo team): $KEY
  Log a run from a script:
    AFT_URL=http://$HOST:$PORT AFT_API_KEY=$KEY npx tsx tools/examples/log-run.ts
  Logs: .demo/web.log .demo/worker.log    Stop: npm run demo:stop
MSG
