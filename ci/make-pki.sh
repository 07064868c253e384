#!/usr/bin/env bash
# make-pki.sh DIR [N_DEVICES] - a throw-away test PKI for the TLS tests (nothing is committed).
#
# Makes in DIR (created if missing), with EC prime256v1 keys so it takes well under a second:
#   ca.crt ca.key                 the test CA
#   server.crt server.key         the broker: CN localhost, SAN DNS:localhost, IP:127.0.0.1
#   scanner-K.crt scanner-K.key   one client certificate per device, CN = device id (K = 1..N)
#   backend.crt backend.key       the backend role's client certificate, CN = backend
#   expired.crt expired.key       a client certificate of our CA, CN scanner-1, valid only in 2020
#   foreign-ca.crt foreign-ca.key another CA that the broker does not trust
#   foreign.crt foreign.key       a client certificate from that foreign CA, CN scanner-1
# N_DEVICES defaults to 3. The expired certificate is checked with `openssl x509 -checkend 0`.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 DIR [N_DEVICES]" >&2
    exit 2
fi
dir=$1
n=${2:-3}
case $n in
    ''|*[!0-9]*) echo "make-pki.sh: N_DEVICES must be a number, got '$n'" >&2; exit 2 ;;
esac
command -v openssl >/dev/null || { echo "make-pki.sh: openssl not found; apt-get install openssl" >&2; exit 1; }
mkdir -p "$dir"
cd "$dir"
umask 077

newkey() { openssl ecparam -name prime256v1 -genkey -noout -out "$1" 2>/dev/null; }

# ca NAME CN: a self-signed CA certificate NAME.crt with key NAME.key.
make_ca() {
    newkey "$1.key"
    openssl req -x509 -new -key "$1.key" -sha256 -days 3650 -subj "/O=scansim test/CN=$2" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$1.crt" 2>/dev/null
}

# leaf NAME CN CA EXTFILE-TEXT: a certificate NAME.crt signed by CA.
make_leaf() {
    local name=$1 cn=$2 ca=$3 ext=$4
    newkey "$name.key"
    openssl req -new -key "$name.key" -subj "/O=scansim test/CN=$cn" -out "$name.csr" 2>/dev/null
    printf '%s\n' "$ext" >"$name.ext"
    openssl x509 -req -in "$name.csr" -CA "$ca.crt" -CAkey "$ca.key" -CAcreateserial \
        -sha256 -days 825 -extfile "$name.ext" -out "$name.crt" 2>/dev/null
    rm -f "$name.csr" "$name.ext"
}

client_ext='basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyAgreement
extendedKeyUsage=clientAuth'

make_ca ca "scansim test CA"
make_leaf server localhost ca 'basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyAgreement
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1'
# Many devices: one process issues them all (python3-cryptography), about 1 ms each
# instead of three openssl runs each (1,000 devices: 74 s with openssl here).
many_leaves() {
    python3 - "$1" <<'PY'
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
ca_key = serialization.load_pem_private_key(open("ca.key", "rb").read(), None)
ca = x509.load_pem_x509_certificate(open("ca.crt", "rb").read())
now = datetime.datetime.utcnow() - datetime.timedelta(minutes=5)
for i in range(1, int(sys.argv[1]) + 1):
    name = "scanner-%d" % i
    key = ec.generate_private_key(ec.SECP256R1())
    subj = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "scansim test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subj).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=825))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=False)
            .add_extension(x509.KeyUsage(digital_signature=True, key_agreement=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    open(name + ".key", "wb").write(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()))
    open(name + ".crt", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
PY
}

if [ "$n" -gt 20 ] && python3 -c 'import cryptography' 2>/dev/null; then
    many_leaves "$n"
else
    for i in $(seq 1 "$n"); do
        make_leaf "scanner-$i" "scanner-$i" ca "$client_ext"
    done
fi
make_leaf backend backend ca "$client_ext"

# Expired: OpenSSL 3.0's x509 cannot back-date, `openssl ca` can (-startdate/-enddate).
mkdir -p ca-db
: >ca-db/index.txt
cat >ca-db/ca.cnf <<EOF
[ ca ]
default_ca = test_ca
[ test_ca ]
database = $PWD/ca-db/index.txt
new_certs_dir = $PWD/ca-db
serial = $PWD/ca-db/serial
certificate = $PWD/ca.crt
private_key = $PWD/ca.key
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
[ anything ]
commonName = supplied
organizationName = optional
[ client_ext ]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyAgreement
extendedKeyUsage = clientAuth
EOF
echo 1000 >ca-db/serial
newkey expired.key
openssl req -new -key expired.key -subj "/O=scansim test/CN=scanner-1" -out expired.csr 2>/dev/null
openssl ca -batch -config ca-db/ca.cnf -extensions client_ext -startdate 20200101000000Z \
    -enddate 20200201000000Z -in expired.csr -out expired.crt -notext 2>/dev/null
rm -rf expired.csr ca-db
if openssl x509 -in expired.crt -noout -checkend 0 >/dev/null; then
    echo "make-pki.sh: expired.crt is not expired; openssl ca ignored -enddate" >&2
    exit 1
fi

make_ca foreign-ca "foreign CA"
make_leaf foreign scanner-1 foreign-ca "$client_ext"

# Sanity: the good certificates verify against our CA, the foreign one does not.
openssl verify -CAfile ca.crt server.crt scanner-1.crt backend.crt >/dev/null
if openssl verify -CAfile ca.crt foreign.crt >/dev/null 2>&1; then
    echo "make-pki.sh: foreign.crt verifies against ca.crt; the foreign CA is not foreign" >&2
    exit 1
fi
rm -f ./*.srl
# Keys stay 0600; certificates may be read by anyone.
chmod 644 ./*.crt
echo "make-pki.sh: test PKI for $n devices in $PWD"
