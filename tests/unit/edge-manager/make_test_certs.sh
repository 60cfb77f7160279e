#!/usr/bin/env bash
# make_test_certs.sh DIR: a throwaway CA and a server and client certificate signed by it,
# valid for 127.0.0.1 / localhost, for the TLS tests.
set -euo pipefail
dir=$1
mkdir -p "$dir"
cd "$dir"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=segwan-test-ca \
  -keyout ca.key -out ca.pem 2>/dev/null
for n in server client; do
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$n" -keyout "$n.key" -out "$n.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$n.ext"
  openssl x509 -req -in "$n.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -extfile "$n.ext" -out "$n.pem" 2>/dev/null
done
