# Sourced by scripts/test and scripts/bench: the Python stand-ins (moto for S3 and Cognito, an
# OpenID Connect provider) in a virtual environment under target/test-venv, pinned by
# tests/requirements.txt and made again whenever that file changes.

ensure_test_venv() {
  local venv=target/test-venv
  local stamp="$venv/.requirements.sha256"
  local wanted
  wanted=$(sha256sum tests/requirements.txt | cut -d' ' -f1)
  if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    rm -rf "$venv"
    mkdir -p target
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/requirements.txt
    echo "$wanted" > "$stamp"
  fi
  "$venv/bin/moto_server" --help > /dev/null
  "$venv/bin/python" -c "import oidc_provider_mock"
}
