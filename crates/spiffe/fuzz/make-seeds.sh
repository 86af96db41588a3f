#!/usr/bin/env bash
# Regenerates the fixed bundle and the x509_chain seeds with openssl: a P-256 root for
# example.org, a P-256 intermediate and a P-256 leaf for spiffe://example.org/workload, valid for
# ten years from the day this is run. The x509_chain target validates at a fixed time
# (2027-06-01), so regenerate after 2036 or move that time. Run from crates/spiffe/fuzz.
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

cat > ext.cnf <<'CNF'
[root]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectAltName = URI:spiffe://example.org
subjectKeyIdentifier = hash
[mid]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectAltName = URI:spiffe://example.org
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment, keyAgreement
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = critical, URI:spiffe://example.org/workload
authorityKeyIdentifier = keyid
CNF

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }
key root; key mid; key leaf
openssl req -new -x509 -key root.key -subj "/O=Lanyard fuzz/CN=root" -days 3650 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectAltName=URI:spiffe://example.org" -out root.pem
openssl req -new -key mid.key -subj "/O=Lanyard fuzz/CN=intermediate" -out mid.csr
openssl x509 -req -in mid.csr -CA root.pem -CAkey root.key -CAcreateserial -days 3650 \
    -extfile ext.cnf -extensions mid -out mid.pem 2>/dev/null
openssl req -new -key leaf.key -subj "/O=Lanyard fuzz" -out leaf.csr
openssl x509 -req -in leaf.csr -CA mid.pem -CAkey mid.key -CAcreateserial -days 3650 \
    -extfile ext.cnf -extensions leaf -out leaf.pem 2>/dev/null
for c in root mid leaf; do openssl x509 -in $c.pem -outform DER -out $c.der; done
openssl pkcs8 -topk8 -nocrypt -in leaf.key -outform DER -out leaf.pk8
openssl verify -CAfile root.pem -untrusted mid.pem leaf.pem >/dev/null

# x509_chain input: 2-byte big-endian length of the chain, the chain (concatenated DER), the key.
seed() { # name, key file, certs...
    local name=$1 keyfile=$2; shift 2
    cat "$@" > chain.bin
    local n; n=$(stat -c %s chain.bin)
    { printf "\\x$(printf %02x $((n >> 8)))\\x$(printf %02x $((n & 255)))"; cat chain.bin "$keyfile"; } \
        > "$OLDPWD/corpus/x509_chain/$name"
}
seed leaf-and-intermediate leaf.pk8 leaf.der mid.der
seed leaf-intermediate-and-root leaf.pk8 leaf.der mid.der root.der
seed leaf-only leaf.pk8 leaf.der
seed intermediate-as-leaf leaf.pk8 mid.der
cp root.der "$OLDPWD/fixtures/bundle.der"
