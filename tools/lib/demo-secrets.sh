# Sourced by tools/demo.sh (and its test): the demo's secrets in .demo/ — the session-signing secret, the demo
# password and the API key — are readable by their owner only. Files an older demo left world-readable (0644) are
# fixed on every start, not only new ones made right.

DEMO_SECRET_FILES="auth-secret api-key password"

# The folder, made if missing, and the secret files already in it: owner-only.
secure_demo_dir() {
  local dir="$1" f
  mkdir -p "$dir"
  chmod 700 "$dir"
  for f in $DEMO_SECRET_FILES; do
    if [ -e "$dir/$f" ]; then chmod 600 "$dir/$f"; fi
  done
}

# The session secret, made once (mode 0600 from the start: no moment when another user could read it).
ensure_auth_secret() {
  local file="$1/auth-secret"
  if [ ! -s "$file" ]; then
    (umask 077 && node -e "console.log(require('crypto').randomBytes(32).toString('base64url'))" >"$file")
  fi
  chmod 600 "$file"
}
