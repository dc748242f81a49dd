#!/bin/sh
# Makes the certificates the TLS tests use, with the openssl CLI, into DIR (created if need
# be). Keys are made at test time and never committed. EC P-256 keys keep it fast.
#
#   ca.pem ca.key                 the test CA ("Warren Test CA")
#   server.pem server.key         CN=localhost, SAN DNS:localhost, IP:127.0.0.1, signed by the CA
#   server-enc.key                server.key encrypted with the password "warren-secret"
#   server2.pem server2.key       CN=warren-reloaded, same SANs and CA: the certificate swapped
#                                 in by reload tests
#   client.pem client.key         CN=warren-client, O=Warren Tests, C=GB, signed by the CA
#   client-dn.pem client-dn.key   a subject with the characters RFC 4514 escapes and a
#                                 multi-valued RDN, signed by the CA
#   client-long.pem client-long.key  a subject whose DN takes 101 bytes, signed by the CA
#   stranger.pem stranger.key     CN=stranger, signed by the CA
#   untrusted.pem untrusted.key   CN=warren-client signed by another CA (other-ca.pem)
#   node.pem node.key             CN=warren-node, serverAuth and clientAuth, signed by the CA:
#                                 a cluster node's certificate (cluster.tls.*), both ends
#   other-node.pem other-node.key the same, signed by the other CA
#
# Usage: tls_certs.sh DIR   (TLS_CERT_DAYS: validity, 7 days unless set)
set -eu

dir=${1:?usage: tls_certs.sh DIR}
mkdir -p "$dir"
cd "$dir"

command -v openssl >/dev/null 2>&1 || { echo "tls_certs.sh: openssl not found" >&2; exit 77; }

days=${TLS_CERT_DAYS:-7}
newkey() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

# A self-signed CA: name, subject.
make_ca() {
    newkey "$1.key"
    openssl req -x509 -new -key "$1.key" -out "$1.pem" -days $days -subj "$2" \
        -addext basicConstraints=critical,CA:true \
        -addext keyUsage=critical,keyCertSign,cRLSign
}

# A leaf certificate: name, subject, CA name, extension text; extra req options follow.
make_leaf() {
    name=$1 subj=$2 ca=$3 ext=$4
    shift 4
    newkey "$name.key"
    printf '%s\n' "$ext" >"$name.ext"
    openssl req -new -key "$name.key" -out "$name.csr" -subj "$subj" "$@"
    openssl x509 -req -in "$name.csr" -CA "$ca.pem" -CAkey "$ca.key" -CAcreateserial \
        -out "$name.pem" -days $days -extfile "$name.ext" 2>/dev/null
    rm -f "$name.csr" "$name.ext"
}

server_ext='basicConstraints=CA:false
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1'
node_ext='basicConstraints=CA:false
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:localhost,IP:127.0.0.1'
client_ext='basicConstraints=CA:false
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth'

make_ca ca "/CN=Warren Test CA"
make_ca other-ca "/CN=Somebody Else's CA"
make_leaf server "/CN=localhost" ca "$server_ext"
make_leaf server2 "/CN=warren-reloaded" ca "$server_ext"
make_leaf client "/C=GB/O=Warren Tests/CN=warren-client" ca "$client_ext"
# Comma, plus, quote, backslash, angle brackets, semicolon, a leading '#' and space, a
# trailing space, UTF-8, and OU+L as one multi-valued RDN.
zurich=$(printf 'Z\303\274rich') # UTF-8, written in octal to keep this file ASCII
make_leaf client-dn "/C=DE/L=$zurich/O=Acme, \"Inc\" <1\\+1;2\\\\3>/OU=QA+L=Here/CN=#warren client " \
    ca "$client_ext" -multivalue-rdn -utf8
make_leaf client-long "/C=US/ST=Oregon/L=Springfield/O=Example Corporation/OU=Messaging Platform/CN=warren-client.example.com" \
    ca "$client_ext"
make_leaf stranger "/CN=stranger" ca "$client_ext"
make_leaf untrusted "/C=GB/O=Warren Tests/CN=warren-client" other-ca "$client_ext"
make_leaf node "/CN=warren-node" ca "$node_ext"
make_leaf other-node "/CN=warren-node" other-ca "$node_ext"
openssl pkey -in server.key -aes256 -passout pass:warren-secret -out server-enc.key
