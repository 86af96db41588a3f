# shellcheck shell=bash
# Throwaway TLS material for the private CI databases (.ci/databases.sh).
# Functions only; safe to source under `set -euo pipefail`.

# _ci_db_make_tls DIR
# Writes DIR/ca.pem (a CA that exists for this run only) and DIR/server.pem + server.key (a
# server certificate it signed, for 127.0.0.1, ::1 and localhost), then deletes the CA key so
# nothing else can ever chain to that CA. The extensions are the ones strict verifiers such as
# webpki (rustls) insist on: CA:TRUE with keyCertSign on the CA, CA:FALSE with serverAuth and
# the IP SANs on the leaf. Both certificates live two days: one CI run, with slack for clocks.
_ci_db_make_tls() {
  local dir=$1
  mkdir -p "$dir"
  cat >"$dir/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no

[dn]
CN = Lanyard CI throwaway database CA

[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, IP:::1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF

  # P-256 keys: generated instantly, and accepted by PostgreSQL, MariaDB and rustls alike.
  local -a ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  openssl req -x509 "${ec[@]}" -config "$dir/openssl.cnf" -extensions ca_ext -days 2 \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
  openssl req -new "${ec[@]}" -config "$dir/openssl.cnf" -subj /CN=127.0.0.1 \
    -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
  # A random serial: a rerun must not reissue a serial a client may have cached.
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -set_serial "0x1$(openssl rand -hex 15)" -days 2 \
    -extfile "$dir/openssl.cnf" -extensions server_ext -out "$dir/server.pem" 2>/dev/null

  rm -f "$dir/ca.key" "$dir/server.csr" "$dir/openssl.cnf"
  # PostgreSQL refuses a key readable by anyone but its owner, which must be the server user.
  chmod 600 "$dir/server.key"
  chmod 644 "$dir/ca.pem" "$dir/server.pem"
  if ((EUID == 0)); then
    chown "$CI_DB_USER:" "$dir/server.key"
  fi
}
