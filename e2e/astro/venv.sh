#!/usr/bin/env bash
# Print the path of a Python interpreter with e2e/astro/requirements.txt
# installed (numpy, astropy, PyYAML), creating the venv on first use.
#
# Usage: PY=$(e2e/astro/venv.sh)
# The venv lives in $KUBEDAG_E2E_CACHE/venv/astro-<hash>/ (default cache
# /var/cache/kubedag-e2e), <hash> covering requirements.txt and the Python
# version, so every clone on the machine shares it and a re-run costs ~0.1 s.
# Packages come from PyPI (pip); python3-venv is installed with apt if missing.
. "$(dirname "$0")/../lib.sh"

req="$E2E_SRC/astro/requirements.txt"
PY3=/usr/bin/python3
need python3 "$PY3"
install_needed
# Debian's python3 needs python3-venv for `-m venv` (ensurepip).
"$PY3" -c 'import ensurepip' 2>/dev/null || { NEED_PKGS+=(python3-venv); install_needed; }

hash=$( { cat "$req"; "$PY3" --version; } | sha256sum | cut -c1-16)
venv="$E2E_CACHE/venv/astro-$hash"
# .complete is written last: a venv whose creation was interrupted is redone.
if [[ ! -f $venv/.complete ]]; then
  start=$SECONDS
  log "creating Python venv $venv (requirements.txt from PyPI)"
  rm -rf "$venv"
  mkdir -p "$E2E_CACHE/venv" "$E2E_CACHE/logs"
  venv_log="$E2E_CACHE/logs/venv-astro.log"
  { "$PY3" -m venv "$venv" &&
    "$venv/bin/pip" install --disable-pip-version-check --no-input -r "$req"; } >"$venv_log" 2>&1 ||
    { tail -20 "$venv_log" >&2; die "creating the venv failed (log: $venv_log)"; }
  touch "$venv/.complete"
  # Keep the 2 newest venvs (other clones may use an older one).
  ls -dt "$E2E_CACHE/venv/astro-"* 2>/dev/null | tail -n +3 | xargs -r rm -rf
  log "venv ready in $((SECONDS - start))s"
fi
echo "$venv/bin/python"
