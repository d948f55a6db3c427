#!/usr/bin/python3
"""cosign's "ENCRYPTED SIGSTORE PRIVATE KEY" format, written from its description and not from
kiste's code, for the trust e2e test: an independent reader and writer (Python's scrypt is
OpenSSL's, the secretbox is PyNaCl's).

  cosign_key.py decrypt KEY.pem PASSFILE OUT.der   PKCS#8 DER of the private key
  cosign_key.py encrypt IN.der PASSFILE OUT.pem    IN.der: a PKCS#8 DER private key
"""
import base64
import hashlib
import json
import os
import sys

import nacl.secret

TYPE = "ENCRYPTED SIGSTORE PRIVATE KEY"


def derive(password, salt, n, r, p):
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=32)


def decrypt(pem, password):
    lines = pem.decode().strip().splitlines()
    if lines[0] != f"-----BEGIN {TYPE}-----" or lines[-1] != f"-----END {TYPE}-----":
        sys.exit(f"not an {TYPE} PEM block")
    doc = json.loads(base64.b64decode("".join(lines[1:-1]), validate=True))
    assert doc["kdf"]["name"] == "scrypt", doc["kdf"]["name"]
    assert doc["cipher"]["name"] == "nacl/secretbox", doc["cipher"]["name"]
    params = doc["kdf"]["params"]
    key = derive(password, base64.b64decode(doc["kdf"]["salt"]), params["N"], params["r"], params["p"])
    box = nacl.secret.SecretBox(key)
    return box.decrypt(base64.b64decode(doc["ciphertext"]), base64.b64decode(doc["cipher"]["nonce"]))


def encrypt(der, password):
    salt = os.urandom(32)
    nonce = os.urandom(24)
    key = derive(password, salt, 32768, 8, 1)
    sealed = nacl.secret.SecretBox(key).encrypt(der, nonce).ciphertext  # MAC, then ciphertext
    doc = {
        "kdf": {"name": "scrypt", "params": {"N": 32768, "r": 8, "p": 1},
                "salt": base64.b64encode(salt).decode()},
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(sealed).decode(),
    }
    body = base64.b64encode(json.dumps(doc).encode()).decode()
    wrapped = "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN {TYPE}-----\n{wrapped}\n-----END {TYPE}-----\n".encode()


def main():
    op, src, passfile, dst = sys.argv[1:5]
    password = open(passfile, "rb").read()
    data = open(src, "rb").read()
    out = decrypt(data, password) if op == "decrypt" else encrypt(data, password)
    with open(dst, "wb") as f:
        f.write(out)


if __name__ == "__main__":
    main()
