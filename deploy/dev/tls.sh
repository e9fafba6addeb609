#!/usr/bin/env bash
# Makes the certificates the TLS tests use, if they are not there: a test CA,
# a server certificate for localhost and 127.0.0.1 (RabbitMQ and
# PostgreSQL), a client certificate (for a broker that asks for one), and a
# second CA that signed none of them (a wrong CA must be refused).
# Usage: deploy/dev/tls.sh DIR
set -euo pipefail
dir=${1:?usage: tls.sh DIR}
mkdir -p "$dir"
cd "$dir"
if [[ -s ca.pem && -s server.pem && -s client.pem && -s other-ca.pem ]]; then
  exit 0
fi
ca() { # name subject
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.pem" \
    -days 3650 -subj "$2" 2>/dev/null
}
signed() { # name subject extensions
  openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
  printf '%s\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
    -out "$1.pem" -days 3650 -extfile "$1.ext" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
  # PKCS#8, as the hub reads a client key.
  openssl pkcs8 -topk8 -nocrypt -in "$1.key" -out "$1.key.p8"
  mv "$1.key.p8" "$1.key"
}
ca ca "/CN=gridhub dev CA"
ca other-ca "/CN=some other CA"
signed server "/CN=localhost" "subjectAltName=DNS:localhost,IP:127.0.0.1"
signed client "/CN=gridhub" "extendedKeyUsage=clientAuth"
chmod 644 ./*.pem
chmod 600 ./*.key
# PostgreSQL reads the server key as its own user.
if id postgres >/dev/null 2>&1; then
  cp server.key server-postgres.key
  chown postgres server-postgres.key
  chmod 600 server-postgres.key
fi
# RabbitMQ reads it as its own.
if id rabbitmq >/dev/null 2>&1; then
  cp server.key server-rabbitmq.key
  chown rabbitmq server-rabbitmq.key
  chmod 600 server-rabbitmq.key
fi
