#!/usr/bin/env python3
"""An independent SCEP (RFC 8894) client for privca's interop tests: a library and a CLI.

It owns the client side of SCEP, written against the RFC with pyasn1-alt-modules' RFC 5652/5280/
2986/8894 codecs and `cryptography` (no privca code):
  * GetCACaps and GetCACert (certificate order kept as sent),
  * pkiMessages: PKCSReq, RenewalReq, CertPoll, GetCert, GetCRL = CMS SignedData (RSA or ECDSA,
    SHA-1/256/512, the SCEP signed attributes) over an EnvelopedData (RSA key transport,
    AES-128/256-CBC or 3DES-CBC) for the RA certificate,
  * sending them by POST, by GET with macOS-style base64, or by GET wrapped at 64 characters
    like Cisco IOS,
  * CertRep checking: the RA's signature, messageDigest, messageType, transactionID, nonces,
    pkiStatus/failInfo, and the decrypted certs-only reply (certificates and CRLs),
  * writing a PKCSReq for certmonger's scep-submit and decoding what scep-submit prints,
  * CSRs without subjectAltName built the way certmonger, sscep and Cisco IOS build them (--style).

certmonger's scep-submit (Debian 12 package certmonger 0.79.17, /usr/lib/certmonger/scep-submit),
from its man page and source, and checked against a loopback mock server by selftest.py:

    scep-submit -u URL -r RA.pem -N CA.pem -p REQ.pem     (PKCSReq/RenewalReq)
    scep-submit -u URL -r RA.pem -N CA.pem -g POLL.pem    (CertPoll; same outputs)
    scep-submit -u URL -c                                 (GetCACaps: prints the body)
    scep-submit -u URL -C                                 (GetCACert: prints RA, CA, others as PEM)

  * REQ.pem is the finished pkiMessage; scep-submit signs and encrypts nothing itself. It is
    read as text (fgets), so DER does not work: PEM with any "-----BEGIN X-----" label, or bare
    base64 (characters outside the base64 alphabet are skipped). "-p -" reads standard input;
    -p with no file name reads nothing (exit 16). `scep_client.py pkcsreq` writes REQ.pem as
    "-----BEGIN PKCS7-----" PEM (64-character lines).
  * -r RA.pem (PEM) is required with -p/-g and is only used to check the CertRep signature
    (PKCS7_verify, RA trusted). An RA certificate issued by the CA also needs -N CA.pem (or
    -I CA.pem): with -r alone, or -R CA.pem (the TLS CA for an https URL), it exits 3 with
    "Error: failed to verify signature on server response. ... certificate verify error".
  * HTTP: GET ?operation=GetCACaps&message=0, then always GET
    ?operation=PKIOperation&message=BASE64 with '+', '/', '=' sent as %2B, %2F, %3D; never POST,
    even when POSTPKIOperation is advertised.
  * A PENDING or FAILURE CertRep must carry an eContent (an empty id-data OCTET STRING is
    enough): without one (RFC 8894 omits the pkcsPKIEnvelope there) PKCS7_verify fails with
    "no content" and it exits 3.
  * Exit status and standard output:
      0  SUCCESS: the pkcsPKIEnvelope (the CertRep's eContent, still encrypted to the
         requester's key) as "-----BEGIN PKCS7-----" PEM; `scep_client.py decrypt --dir DIR`
         opens it with DIR's signer key and prints the certificates as PEM.
      1  PENDING: the CertRep's senderNonce in base64, alone on standard output.
      2  FAILURE: one line naming the failInfo, e.g. "Transaction either is not permitted or
         is not supported by server." for badRequest.
      3  unreachable, or a CertRep it refuses (signature, transactionID, recipientNonce, not a
         CertRep, unexpected Content-Type): "Error: ..." lines.
      4  missing options (no -u, no -r with -p/-g, no operation).
      16 no pkiMessage could be read.

CLI: run with --help. Exit status of enroll/poll/getcert/getcrl: 0 SUCCESS, 2 FAILURE,
3 PENDING, 1 any error (HTTP, signature, nonce...).
"""
import argparse
import base64
import datetime
import hashlib
import ipaddress
import os
import ssl
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.x509.oid import AttributeOID, NameOID
from pyasn1.codec.der import decoder, encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import char, univ, useful
from pyasn1_alt_modules import rfc5280, rfc5652, rfc8894

MESSAGE_TYPES = {"CertRep": 3, "RenewalReq": 17, "PKCSReq": 19, "CertPoll": 20, "GetCert": 21, "GetCRL": 22}
PKI_STATUS = {"0": "SUCCESS", "2": "FAILURE", "3": "PENDING"}
FAIL_INFO = {"0": "badAlg", "1": "badMessageCheck", "2": "badRequest", "3": "badTime", "4": "badCertId"}

DIGESTS = {  # name: (hash class, digest algorithm OID, sha*WithRSAEncryption OID, ecdsa-with-* OID)
    "sha1": (hashes.SHA1, "1.3.14.3.2.26", "1.2.840.113549.1.1.5", "1.2.840.10045.4.1"),
    "sha256": (hashes.SHA256, "2.16.840.1.101.3.4.2.1", "1.2.840.113549.1.1.11", "1.2.840.10045.4.3.2"),
    "sha512": (hashes.SHA512, "2.16.840.1.101.3.4.2.3", "1.2.840.113549.1.1.13", "1.2.840.10045.4.3.4"),
}
CIPHERS = {  # name: (content encryption OID, algorithm class, key bytes)
    "aes128": ("2.16.840.1.101.3.4.1.2", algorithms.AES, 16),
    "aes256": ("2.16.840.1.101.3.4.1.42", algorithms.AES, 32),
    "3des": ("1.2.840.113549.3.7", TripleDES, 24),
}
RSA_ENCRYPTION = "1.2.840.113549.1.1.1"
NULL = encoder.encode(univ.Null(""))


class ScepError(Exception):
    """A reply that breaks RFC 8894 or does not match the request."""


@dataclass
class Request:
    """A built pkiMessage and what its CertRep must echo."""
    der: bytes
    transaction_id: str
    sender_nonce: bytes


# ---------------------------------------------------------------- HTTP

def _http(url, data=None, content_type=None, cafile=None):
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if content_type:
        req.add_header("Content-Type", content_type)
    ctx = ssl.create_default_context(cafile=cafile) if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def _media_type(content_type):
    return content_type.split(";")[0].strip().lower()


def get_ca_caps(url, cafile=None):
    """GetCACaps: the capability keywords, one per line (CRLF or LF)."""
    status, _, body = _http(url + "?operation=GetCACaps", cafile=cafile)
    if status != 200:
        raise ScepError(f"GetCACaps: HTTP {status}")
    return [line.strip() for line in body.decode("ascii").splitlines() if line.strip()]


def get_ca_cert(url, cafile=None):
    """GetCACert: (media type, [certificates in the order sent])."""
    status, content_type, body = _http(url + "?operation=GetCACert", cafile=cafile)
    if status != 200:
        raise ScepError(f"GetCACert: HTTP {status}")
    media = _media_type(content_type)
    return media, parse_ca_certs(media, body)


def parse_ca_certs(media_type, body):
    """The certificates of a GetCACert reply, in message order."""
    if media_type == "application/x-x509-ca-cert":
        return [x509.load_der_x509_certificate(body)]
    if media_type == "application/x-x509-ca-ra-cert":
        certs, _ = parse_certs_only(body)
        return certs
    raise ScepError(f"GetCACert: unexpected Content-Type {media_type!r}")


def pick_ra(certs):
    """(RA encryption certificate, CA certificate) from a GetCACert reply.

    The encryption certificate is the first non-CA one with keyEncipherment; a lone CA
    certificate does both jobs. The CA is the first certificate with cA=TRUE."""
    def is_ca(c):
        try:
            return c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            return False

    def encrypts(c):
        try:
            return c.extensions.get_extension_for_class(x509.KeyUsage).value.key_encipherment
        except x509.ExtensionNotFound:
            return True

    cas = [c for c in certs if is_ca(c)]
    ras = [c for c in certs if not is_ca(c) and encrypts(c)]
    ca = cas[0] if cas else certs[0]
    return (ras[0] if ras else ca), ca


def message_query(der, wrap=False):
    """The GET query for a pkiMessage: standard base64 with only '=' percent-encoded ('+' and '/'
    raw, as macOS sends it); with `wrap`, a %0A after every 64 characters, as Cisco IOS sends it."""
    b64 = base64.b64encode(der).decode("ascii")
    if wrap:
        b64 = "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))
    return "operation=PKIOperation&message=" + b64.replace("=", "%3D").replace("\n", "%0A")


def send(url, der, method="post", cafile=None):
    """PKIOperation by "post", "get" or "get-wrapped": (HTTP status, media type, body)."""
    if method == "post":
        status, content_type, body = _http(url + "?operation=PKIOperation", der, "application/x-pki-message", cafile)
    elif method in ("get", "get-wrapped"):
        status, content_type, body = _http(url + "?" + message_query(der, method == "get-wrapped"), cafile=cafile)
    else:
        raise ValueError(f"unknown method {method!r}")
    return status, _media_type(content_type), body


# ---------------------------------------------------------------- keys, CSRs, self-signed certificates

def new_rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_csr(key, common_name, sans=(), challenge=None):
    """A PKCS#10 request with CN, a SAN extension (DNS names and IP addresses) and an optional
    challengePassword attribute."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([_general_name(s) for s in sans]), critical=False)
    if challenge is not None:
        builder = builder.add_attribute(AttributeOID.CHALLENGE_PASSWORD, challenge.encode())
    return builder.sign(key, hashes.SHA256())


# How some clients build a request without subjectAltName (--style): the subject CN and the
# attributes each sends, from their sources and packet captures.
#   certmonger  its daemon (csrgen-o.c / certext.c): CN as PrintableString, an extensionRequest
#               with keyUsage, basicConstraints CA:FALSE (critical) and subjectKeyIdentifier, a
#               friendlyName (BMPString, the tracking nickname) and challengePassword
#               (PrintableString); no SAN unless the request names hosts.
#   sscep       its mkrequest (openssl req): CN only, challengePassword, no extensions.
#   ios         Cisco IOS: CN=<hostname.domain> plus unstructuredName (1.2.840.113549.1.9.2,
#               IA5String) in the subject, challengePassword, an extensionRequest with keyUsage.
CSR_STYLES = ("plain", "certmonger", "sscep", "ios")
UNSTRUCTURED_NAME = x509.ObjectIdentifier("1.2.840.113549.1.9.2")
FRIENDLY_NAME = x509.ObjectIdentifier("1.2.840.113549.1.9.20")


def make_device_csr(key, common_name, challenge, style):
    """A PKCS#10 request without subjectAltName, built like the client `style` builds it."""
    from cryptography.x509.name import _ASN1Type
    cn_type = _ASN1Type.PrintableString if style in ("certmonger", "ios") else _ASN1Type.UTF8String
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name, _type=cn_type)]
    if style == "ios":
        attrs.append(x509.NameAttribute(UNSTRUCTURED_NAME, common_name, _type=_ASN1Type.IA5String))
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs))
    ku = dict(digital_signature=True, key_encipherment=True, content_commitment=False, data_encipherment=False,
              key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False)
    if style == "certmonger":
        builder = (builder.add_extension(x509.KeyUsage(**ku), critical=False)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                   .add_attribute(FRIENDLY_NAME, "20260101000000".encode("utf-16-be"), _tag=_ASN1Type.BMPString))
    elif style == "ios":
        builder = builder.add_extension(x509.KeyUsage(**ku), critical=True)
    if challenge is not None:
        tag = _ASN1Type.PrintableString if style in ("certmonger", "ios") else _ASN1Type.UTF8String
        builder = builder.add_attribute(AttributeOID.CHALLENGE_PASSWORD, challenge.encode(), _tag=tag)
    return builder.sign(key, hashes.SHA256())


def _general_name(value):
    try:
        return x509.IPAddress(ipaddress.ip_address(value))
    except ValueError:
        return x509.DNSName(value)


def self_signed(key, subject):
    """The throwaway certificate a SCEP client signs its first request with."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, content_commitment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )


def transaction_id(public_key):
    """The RECOMMENDED transactionID: a hash of the request's public key (hex, PrintableString)."""
    spki = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest().upper()


# ---------------------------------------------------------------- CMS building blocks

def _alg(oid, params=None):
    alg = rfc5280.AlgorithmIdentifier()
    alg["algorithm"] = univ.ObjectIdentifier(oid)
    if params is not None:
        alg["parameters"] = univ.Any(params)
    return alg


def _name(name):
    return decoder.decode(name.public_bytes(), asn1Spec=rfc5280.Name())[0]


def _issuer_and_serial(issuer, serial):
    ias = rfc5652.IssuerAndSerialNumber()
    ias["issuer"] = _name(issuer)
    ias["serialNumber"] = serial
    return ias


def issuer_and_serial(issuer, serial):
    """IssuerAndSerialNumber DER: the GetCert and GetCRL message content."""
    return encoder.encode(_issuer_and_serial(issuer, serial))


def issuer_and_subject(issuer, subject):
    """IssuerAndSubject DER: the CertPoll message content."""
    ias = rfc8894.IssuerAndSubject()
    ias["issuer"] = _name(issuer)
    ias["subject"] = _name(subject)
    return encoder.encode(ias)


def _content_info(content_type, content):
    ci = rfc5652.ContentInfo()
    ci["contentType"] = content_type
    ci["content"] = content
    return encoder.encode(ci)


def envelope(content, recipient, cipher="aes128", encrypted_key=None, padded=None):
    """ContentInfo(EnvelopedData) of `content` for the RSA key of `recipient` (PKCS#1 v1.5
    key transport, issuerAndSerialNumber recipient id; CBC with the IV as OCTET STRING).

    For attack tests: `encrypted_key` replaces the key transport's output (bytes, or a function
    of the content-encryption key), and `padded` the PKCS#7-padded plaintext (a function of
    `content`)."""
    oid, algorithm, key_len = CIPHERS[cipher]
    cek = os.urandom(key_len)
    iv = os.urandom(algorithm.block_size // 8)
    if padded is None:
        padder = padding.PKCS7(algorithm.block_size).padder()
        plaintext = padder.update(content) + padder.finalize()
    else:
        plaintext = padded(content)
    encryptor = Cipher(algorithm(cek), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(plaintext) + encryptor.finalize()
    if encrypted_key is None:
        encrypted_key = recipient.public_key().encrypt(cek, PKCS1v15())
    elif callable(encrypted_key):
        encrypted_key = encrypted_key(cek)

    ktri = rfc5652.KeyTransRecipientInfo()
    ktri["version"] = 0
    ktri["rid"]["issuerAndSerialNumber"] = _issuer_and_serial(recipient.issuer, recipient.serial_number)
    ktri["keyEncryptionAlgorithm"] = _alg(RSA_ENCRYPTION, NULL)
    ktri["encryptedKey"] = encrypted_key
    ri = rfc5652.RecipientInfo()
    ri["ktri"] = ktri

    env = rfc5652.EnvelopedData()
    env["version"] = 0
    env["recipientInfos"].append(ri)
    eci = env["encryptedContentInfo"]
    eci["contentType"] = rfc5652.id_data
    eci["contentEncryptionAlgorithm"] = _alg(oid, encoder.encode(univ.OctetString(iv)))
    eci["encryptedContent"] = ciphertext
    return _content_info(rfc5652.id_envelopedData, env)


def decrypt_envelope(der, key):
    """The content of a ContentInfo(EnvelopedData) with one RSA key-transport recipient."""
    try:
        ci = decoder.decode(der, asn1Spec=rfc5652.ContentInfo())[0]
        if ci["contentType"] != rfc5652.id_envelopedData:
            raise ScepError("pkcsPKIEnvelope is not EnvelopedData")
        env = decoder.decode(ci["content"], asn1Spec=rfc5652.EnvelopedData())[0]
        recipients = list(env["recipientInfos"])
        if len(recipients) != 1 or recipients[0].getName() != "ktri":
            raise ScepError("EnvelopedData: expected one key-transport recipient")
        eci = env["encryptedContentInfo"]
        oid = str(eci["contentEncryptionAlgorithm"]["algorithm"])
        iv = bytes(decoder.decode(eci["contentEncryptionAlgorithm"]["parameters"], asn1Spec=univ.OctetString())[0])
        ciphertext = bytes(eci["encryptedContent"])
    except PyAsn1Error as e:
        raise ScepError(f"EnvelopedData does not decode: {e}") from e
    ciphers = {c[0]: c for c in CIPHERS.values()}
    if oid not in ciphers:
        raise ScepError(f"EnvelopedData: unsupported content encryption {oid}")
    _, algorithm, key_len = ciphers[oid]
    try:
        cek = key.decrypt(bytes(recipients[0]["ktri"]["encryptedKey"]), PKCS1v15())
    except ValueError as e:
        raise ScepError("EnvelopedData: the key transport does not decrypt with our key") from e
    if len(cek) != key_len:
        raise ScepError("EnvelopedData: content-encryption key of the wrong length")
    decryptor = Cipher(algorithm(cek), modes.CBC(iv)).decryptor()
    unpadder = padding.PKCS7(algorithm.block_size).unpadder()
    try:
        padded = decryptor.update(ciphertext) + decryptor.finalize()
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError as e:
        raise ScepError("EnvelopedData: bad padding after decryption") from e


def _attribute(oid, value):
    attr = rfc5652.Attribute()
    attr["attrType"] = univ.ObjectIdentifier(oid)
    attr["attrValues"].append(rfc5652.AttributeValue(encoder.encode(value)))
    return attr


def scep_attributes(message_type, txid, sender_nonce):
    """The SCEP signed attributes of a client request: (OID, ASN.1 value) pairs."""
    return [
        (rfc8894.id_transactionID, char.PrintableString(txid)),
        (rfc8894.id_messageType, char.PrintableString(str(MESSAGE_TYPES[message_type]))),
        (rfc8894.id_senderNonce, univ.OctetString(sender_nonce)),
    ]


def _signature_alg(key, digest, rsa_oid):
    _, _, rsa_with, ecdsa_with = DIGESTS[digest]
    if isinstance(key, rsa.RSAPrivateKey):
        return _alg(RSA_ENCRYPTION if rsa_oid == "rsaEncryption" else rsa_with, NULL)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return _alg(ecdsa_with)
    raise ValueError("signer key must be RSA or EC")


def _sign(key, data, digest):
    hash_cls = DIGESTS[digest][0]
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, PKCS1v15(), hash_cls())
    return key.sign(data, ec.ECDSA(hash_cls()))


def sign_message(content, attributes, signer_cert, signer_key, digest="sha256", rsa_oid="rsaEncryption",
                 signing_time=True):
    """ContentInfo(SignedData) over id-data `content` (None: no eContent) with `signer_cert`
    included and signed attributes contentType, messageDigest, signingTime and `attributes`.

    `rsa_oid` names the RSA signatureAlgorithm: "rsaEncryption" (as OpenSSL-based clients
    send) or "withDigest" (sha*WithRSAEncryption)."""
    hash_cls, digest_oid, _, _ = DIGESTS[digest]
    h = hashes.Hash(hash_cls())
    h.update(content or b"")
    pairs = [(rfc5652.id_contentType, rfc5652.id_data), (rfc5652.id_messageDigest, univ.OctetString(h.finalize()))]
    if signing_time:
        pairs.append((rfc5652.id_signingTime, useful.UTCTime.fromDateTime(
            datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0))))
    pairs += attributes

    si = rfc5652.SignerInfo()
    si["version"] = 1
    si["sid"]["issuerAndSerialNumber"] = _issuer_and_serial(signer_cert.issuer, signer_cert.serial_number)
    si["digestAlgorithm"] = _alg(digest_oid, NULL)
    plain = rfc5652.SignedAttributes()  # the same attributes untagged: what the signature covers
    for oid, value in pairs:
        attr = _attribute(oid, value)
        si["signedAttrs"].append(attr)
        plain.append(attr)
    si["signatureAlgorithm"] = _signature_alg(signer_key, digest, rsa_oid)
    si["signature"] = _sign(signer_key, encoder.encode(plain), digest)

    sd = rfc5652.SignedData()
    sd["version"] = 1
    sd["digestAlgorithms"].append(_alg(digest_oid, NULL))
    sd["encapContentInfo"]["eContentType"] = rfc5652.id_data
    if content is not None:
        sd["encapContentInfo"]["eContent"] = content
    cert = rfc5652.CertificateChoices()
    cert["certificate"] = decoder.decode(signer_cert.public_bytes(serialization.Encoding.DER),
                                         asn1Spec=rfc5280.Certificate())[0]
    sd["certificates"].append(cert)
    sd["signerInfos"].append(si)
    return _content_info(rfc5652.id_signedData, sd)


def pki_message(message_type, content, ra_cert, signer_cert, signer_key, cipher="aes128", digest="sha256",
                rsa_oid="rsaEncryption", signing_time=True, txid=None, sender_nonce=None, envelope_opts=None):
    """A client pkiMessage: `content` enveloped for `ra_cert` (`envelope_opts`: see
    `envelope`), then signed. The transactionID defaults to a hash of the signer's public key,
    the senderNonce to 16 random bytes."""
    txid = txid or transaction_id(signer_cert.public_key())
    sender_nonce = sender_nonce or os.urandom(16)
    der = sign_message(envelope(content, ra_cert, cipher, **(envelope_opts or {})),
                       scep_attributes(message_type, txid, sender_nonce),
                       signer_cert, signer_key, digest, rsa_oid, signing_time)
    return Request(der, txid, sender_nonce)


def pkcs_req(csr, ra_cert, signer_cert, signer_key, renewal=False, **opts):
    """PKCSReq (self-signed signer) or RenewalReq (signer = the CA-issued certificate); the
    transactionID defaults to a hash of the CSR's public key."""
    opts.setdefault("txid", transaction_id(csr.public_key()))
    return pki_message("RenewalReq" if renewal else "PKCSReq", csr.public_bytes(serialization.Encoding.DER),
                       ra_cert, signer_cert, signer_key, **opts)


def cert_poll(ca_cert, subject, txid, ra_cert, signer_cert, signer_key, **opts):
    """CertPoll for the request `txid` whose subject was `subject`."""
    return pki_message("CertPoll", issuer_and_subject(ca_cert.subject, subject), ra_cert, signer_cert,
                       signer_key, txid=txid, **opts)


def get_cert(ca_cert, serial, ra_cert, signer_cert, signer_key, **opts):
    """GetCert for the certificate `serial` issued by `ca_cert`."""
    return pki_message("GetCert", issuer_and_serial(ca_cert.subject, serial), ra_cert, signer_cert,
                       signer_key, **opts)


def get_crl(cert, ra_cert, signer_cert, signer_key, **opts):
    """GetCRL for the CRL that covers `cert`."""
    return pki_message("GetCRL", issuer_and_serial(cert.issuer, cert.serial_number), ra_cert, signer_cert,
                       signer_key, **opts)


# ---------------------------------------------------------------- parsing replies

def _tlv(buf, pos=0):
    """(tag byte, value start, value end) of the DER TLV at `pos` (definite lengths only)."""
    if pos + 2 > len(buf):
        raise ScepError("truncated DER")
    first = buf[pos + 1]
    start = pos + 2
    if first < 0x80:
        length = first
    elif first == 0x80 or first - 0x80 > 4:
        raise ScepError("indefinite or oversized DER length")
    else:
        n = first - 0x80
        length = int.from_bytes(buf[start:start + n], "big")
        start += n
    if start + length > len(buf):
        raise ScepError("truncated DER")
    return buf[pos], start, start + length


def _children(buf):
    """The raw child TLVs of the constructed TLV `buf`."""
    _, pos, end = _tlv(buf)
    out = []
    while pos < end:
        _, start, stop = _tlv(buf, pos)
        out.append(buf[pos:stop])
        pos = stop
    return out


def _signed_data_fields(der):
    """The raw fields of the SignedData in ContentInfo `der`, as sent."""
    content_type, wrapper = _children(der)
    if content_type != encoder.encode(rfc5652.id_signedData):
        raise ScepError("not a SignedData ContentInfo")
    return _children(_children(wrapper)[0])


def parse_certs_only(der):
    """([certificates], [CRLs]) of a degenerate certs-only SignedData, as sent and in order."""
    try:
        fields = _signed_data_fields(der)
        certs = [x509.load_der_x509_certificate(c) for f in fields if f[0] == 0xA0 for c in _children(f)]
        crls = [x509.load_der_x509_crl(c) for f in fields if f[0] == 0xA1 for c in _children(f)]
    except ValueError as e:
        raise ScepError(f"certs-only SignedData does not decode: {e}") from e
    return certs, crls


def _signer(sid, candidates):
    for cert in candidates:
        if sid.getName() == "issuerAndSerialNumber":
            ias = sid["issuerAndSerialNumber"]
            if (encoder.encode(ias["issuer"]) == cert.issuer.public_bytes()
                    and int(ias["serialNumber"]) == cert.serial_number):
                return cert
        else:
            try:
                ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
            except x509.ExtensionNotFound:
                continue
            if ski == bytes(sid["subjectKeyIdentifier"]):
                return cert
    raise ScepError("CertRep signer is not the RA certificate")


def _verify(cert, signature, data, digest):
    pub = cert.public_key()
    try:
        if isinstance(pub, rsa.RSAPublicKey):
            pub.verify(signature, data, PKCS1v15(), DIGESTS[digest][0]())
        elif isinstance(pub, ec.EllipticCurvePublicKey):
            pub.verify(signature, data, ec.ECDSA(DIGESTS[digest][0]()))
        else:
            raise ScepError("RA key is neither RSA nor EC")
    except InvalidSignature as e:
        raise ScepError("CertRep signature does not verify with the RA certificate") from e


def _single(attrs, oid, spec, what):
    values = attrs.get(str(oid))
    if values is None:
        return None
    if len(values) != 1:
        raise ScepError(f"{what}: expected one value")
    try:
        return decoder.decode(values[0], asn1Spec=spec)[0]
    except PyAsn1Error as e:
        raise ScepError(f"{what}: not a {type(spec).__name__}") from e


def parse_cert_rep(der, ra_cert, client_key, expected_txid, expected_sender_nonce):
    """Check a CertRep and open it.

    `ra_cert` is the RA certificate (or a list of candidates, e.g. the GetCACert reply) that must
    have signed it; `client_key` is the requester's key the reply is encrypted to. The signature
    covers the signed attributes as sent, which must be DER (RFC 5652 §5.4). Returns
    {status: "SUCCESS"|"FAILURE"|"PENDING", fail_info: name or None, fail_info_text: str or None,
    certs: [...], crls: [...], signer_cert}. Raises ScepError on any mismatch."""
    candidates = ra_cert if isinstance(ra_cert, (list, tuple)) else [ra_cert]
    try:
        ci = decoder.decode(der, asn1Spec=rfc5652.ContentInfo())[0]
        if ci["contentType"] != rfc5652.id_signedData:
            raise ScepError("CertRep is not SignedData")
        sd = decoder.decode(ci["content"], asn1Spec=rfc5652.SignedData())[0]
    except PyAsn1Error as e:
        raise ScepError(f"CertRep does not decode: {e}") from e
    if len(sd["signerInfos"]) != 1:
        raise ScepError("CertRep: expected one SignerInfo")
    si = sd["signerInfos"][0]
    if not si["signedAttrs"].isValue:
        raise ScepError("CertRep has no signed attributes")
    signer = _signer(si["sid"], candidates)
    digest = {d[1]: name for name, d in DIGESTS.items()}.get(str(si["digestAlgorithm"]["algorithm"]))
    if digest is None:
        raise ScepError(f"CertRep: unsupported digest {si['digestAlgorithm']['algorithm']}")

    raw_attrs = [f for f in _children(_children(_signed_data_fields(der)[-1])[0]) if f[0] == 0xA0][0]
    signed = b"\x31" + raw_attrs[1:]
    plain = rfc5652.SignedAttributes()
    for a in si["signedAttrs"]:
        plain.append(a)
    if encoder.encode(plain) != signed:
        raise ScepError("CertRep signed attributes are not DER")
    _verify(signer, bytes(si["signature"]), signed, digest)

    attrs = {}
    for a in si["signedAttrs"]:
        attrs.setdefault(str(a["attrType"]), []).extend(bytes(v) for v in a["attrValues"])
    econtent = sd["encapContentInfo"]["eContent"]
    content = bytes(econtent) if econtent.isValue else None
    h = hashes.Hash(DIGESTS[digest][0]())
    h.update(content or b"")
    if _single(attrs, rfc5652.id_contentType, univ.ObjectIdentifier(), "contentType") != rfc5652.id_data:
        raise ScepError("CertRep contentType attribute is not id-data")
    md = _single(attrs, rfc5652.id_messageDigest, univ.OctetString(), "messageDigest")
    if md is None or bytes(md) != h.finalize():
        raise ScepError("CertRep messageDigest does not match the content")
    if str(_single(attrs, rfc8894.id_messageType, char.PrintableString(), "messageType")) != "3":
        raise ScepError("messageType is not CertRep (3)")
    if str(_single(attrs, rfc8894.id_transactionID, char.PrintableString(), "transactionID")) != expected_txid:
        raise ScepError("transactionID is not the request's")
    recipient_nonce = _single(attrs, rfc8894.id_recipientNonce, univ.OctetString(), "recipientNonce")
    if recipient_nonce is None or bytes(recipient_nonce) != expected_sender_nonce:
        raise ScepError("recipientNonce is not the request's senderNonce")
    sender_nonce = _single(attrs, rfc8894.id_senderNonce, univ.OctetString(), "senderNonce")
    if sender_nonce is None or len(sender_nonce) == 0 or bytes(sender_nonce) == expected_sender_nonce:
        raise ScepError("CertRep has no fresh senderNonce")
    status = PKI_STATUS.get(str(_single(attrs, rfc8894.id_pkiStatus, char.PrintableString(), "pkiStatus")))
    if status is None:
        raise ScepError("pkiStatus missing or not 0, 2 or 3")

    result = {"status": status, "fail_info": None, "fail_info_text": None, "certs": [], "crls": [],
              "signer_cert": signer}
    if status == "FAILURE":
        fail_info = _single(attrs, rfc8894.id_failInfo, char.PrintableString(), "failInfo")
        result["fail_info"] = FAIL_INFO.get(str(fail_info))
        if result["fail_info"] is None:
            raise ScepError("FAILURE without a failInfo of 0..4")
        text = _single(attrs, rfc8894.id_scep_failInfoText, char.UTF8String(), "failInfoText")
        result["fail_info_text"] = None if text is None else str(text)
    elif status == "SUCCESS":
        if content is None:
            raise ScepError("SUCCESS without a pkcsPKIEnvelope")
        result["certs"], result["crls"] = parse_certs_only(decrypt_envelope(content, client_key))
    return result


# ---------------------------------------------------------------- CLI

def _pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _write(path, data, mode=0o644):
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
    os.chmod(path, mode)


def _read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def _load_key(path):
    return serialization.load_pem_private_key(_read_bytes(path), password=None)


def _load_certs(path):
    return x509.load_pem_x509_certificates(_read_bytes(path))


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _opts(args):
    return {"cipher": args.cipher, "digest": args.digest, "rsa_oid": args.sig_oid,
            "signing_time": not args.no_signing_time}


def _new_request(args, ca_certs):
    """Build and save a PKCSReq/RenewalReq in args.dir; the state `poll` and `decrypt` read."""
    os.makedirs(args.dir, exist_ok=True)
    ra, _ = pick_ra(ca_certs)
    key = new_rsa_key()
    if args.style == "plain":
        csr = make_csr(key, args.cn, args.san, args.challenge)
    else:
        csr = make_device_csr(key, args.cn, args.challenge, args.style)
    if args.renew_cert:
        signer_cert, signer_key = _load_certs(args.renew_cert)[0], _load_key(args.renew_key)
    else:
        signer_cert, signer_key = self_signed(key, csr.subject), key
    req = pkcs_req(csr, ra, signer_cert, signer_key, renewal=bool(args.renew_cert), **_opts(args))
    _write(f"{args.dir}/key.pem", _key_pem(key), 0o600)
    _write(f"{args.dir}/signer-key.pem", _key_pem(signer_key), 0o600)
    _write(f"{args.dir}/signer.pem", _pem(signer_cert))
    _write(f"{args.dir}/csr.der", csr.public_bytes(serialization.Encoding.DER))
    _write(f"{args.dir}/ca-certs.pem", "".join(_pem(c) for c in ca_certs))
    _write(f"{args.dir}/txid", req.transaction_id + "\n")
    _write(f"{args.dir}/request.der", req.der)
    return req, signer_key


def _exchange(args, req, ca_certs, client_key):
    """Send `req`, check the CertRep, print the outcome and save certificates/CRLs in args.dir."""
    status, media, body = send(args.url, req.der, args.method, args.cafile)
    if status != 200 or media != "application/x-pki-message":
        print(f"error: HTTP {status} {media!r}: {body[:200]!r}")
        return 1
    try:
        rep = parse_cert_rep(body, ca_certs, client_key, req.transaction_id, req.sender_nonce)
    except ScepError as e:
        print(f"error: {e}")
        return 1
    print(f"status={rep['status']}" + (f" failInfo={rep['fail_info']}" if rep["fail_info"] else "")
          + (f" text={rep['fail_info_text']!r}" if rep["fail_info_text"] else ""))
    if rep["certs"]:
        _write(f"{args.dir}/cert.pem", "".join(_pem(c) for c in rep["certs"]))
    if rep["crls"]:
        _write(f"{args.dir}/crl.pem", b"".join(c.public_bytes(serialization.Encoding.PEM) for c in rep["crls"]))
    return {"SUCCESS": 0, "FAILURE": 2, "PENDING": 3}[rep["status"]]


def cmd_caps(args):
    print("\n".join(get_ca_caps(args.url, args.cafile)))
    return 0


def cmd_cacert(args):
    media, certs = get_ca_cert(args.url, args.cafile)
    print(media)
    for i, c in enumerate(certs):
        print(f"{i}: {c.subject.rfc4514_string()}")
    if args.out:
        _write(args.out, "".join(_pem(c) for c in certs))
    return 0


def cmd_enroll(args):
    _, ca_certs = get_ca_cert(args.url, args.cafile)
    req, signer_key = _new_request(args, ca_certs)
    return _exchange(args, req, ca_certs, signer_key)


def cmd_poll(args):
    ca_certs = _load_certs(f"{args.dir}/ca-certs.pem")
    ra, ca = pick_ra(ca_certs)
    subject = x509.load_der_x509_csr(_read_bytes(f"{args.dir}/csr.der")).subject
    txid = _read_bytes(f"{args.dir}/txid").decode().strip()
    key = _load_key(f"{args.dir}/signer-key.pem")
    req = cert_poll(ca, subject, txid, ra, _load_certs(f"{args.dir}/signer.pem")[0], key, **_opts(args))
    return _exchange(args, req, ca_certs, key)


def cmd_getcert_getcrl(args):
    _, ca_certs = get_ca_cert(args.url, args.cafile)
    ra, ca = pick_ra(ca_certs)
    cert, key = _load_certs(args.cert)[0], _load_key(args.key)
    os.makedirs(args.dir, exist_ok=True)
    if args.command == "getcert":
        req = get_cert(ca, int(args.serial, 16), ra, cert, key, **_opts(args))
    else:
        req = get_crl(cert, ra, cert, key, **_opts(args))
    return _exchange(args, req, ca_certs, key)


def cmd_pkcsreq(args):
    req, _ = _new_request(args, _load_certs(args.ca_certs))
    b64 = base64.b64encode(req.der).decode()
    pem = "".join(["-----BEGIN PKCS7-----\n"] + [b64[i:i + 64] + "\n" for i in range(0, len(b64), 64)]
                  + ["-----END PKCS7-----\n"])
    _write(f"{args.dir}/pkcsreq.pem", pem)
    print(f"{args.dir}/pkcsreq.pem")
    return 0


def cmd_decrypt(args):
    text = sys.stdin.read() if args.input == "-" else _read_bytes(args.input).decode()
    b64 = text.split("-----BEGIN PKCS7-----", 1)[1].split("-----END PKCS7-----", 1)[0]
    certs, crls = parse_certs_only(decrypt_envelope(base64.b64decode(b64), _load_key(f"{args.dir}/signer-key.pem")))
    out = "".join(_pem(c) for c in certs)
    _write(f"{args.dir}/cert.pem", out)
    sys.stdout.write(out)
    return 0 if certs or crls else 1


def main(argv=None):
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--cafile", help="CA bundle for an https URL")
    common.add_argument("--cipher", choices=sorted(CIPHERS), default="aes128")
    common.add_argument("--digest", choices=sorted(DIGESTS), default="sha256")
    common.add_argument("--sig-oid", choices=("rsaEncryption", "withDigest"), default="rsaEncryption",
                        help="RSA signatureAlgorithm OID in the SignerInfo")
    common.add_argument("--no-signing-time", action="store_true", help="leave out the signingTime attribute")
    common.add_argument("--method", choices=("post", "get", "get-wrapped"), default="post")
    request = argparse.ArgumentParser(add_help=False)
    request.add_argument("--cn", required=True)
    request.add_argument("--san", action="append", default=[], help="DNS name or IP address (repeatable)")
    request.add_argument("--challenge", help="challengePassword")
    request.add_argument("--style", choices=CSR_STYLES, default="plain",
                         help="build the CSR like this client does, without subjectAltName (see CSR_STYLES)")
    request.add_argument("--renew-cert", help="RenewalReq signed by this certificate (PEM) ...")
    request.add_argument("--renew-key", help="... and its key (PEM)")
    request.add_argument("--dir", required=True, help="state directory (keys, txid, request, results)")

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("caps", parents=[common], help="GetCACaps").add_argument("url")
    s = sub.add_parser("cacert", parents=[common], help="GetCACert (prints the order; --out FILE saves PEM)")
    s.add_argument("url")
    s.add_argument("--out")
    s = sub.add_parser("enroll", parents=[common, request], help="GetCACert + PKCSReq/RenewalReq")
    s.add_argument("url")
    s = sub.add_parser("poll", parents=[common], help="CertPoll for the request saved in --dir")
    s.add_argument("url")
    s.add_argument("--dir", required=True)
    for name, what in (("getcert", "GetCert for --serial (hex)"), ("getcrl", "GetCRL for --cert")):
        s = sub.add_parser(name, parents=[common], help=f"{what}, signed by --cert/--key")
        s.add_argument("url")
        s.add_argument("--cert", required=True)
        s.add_argument("--key", required=True)
        s.add_argument("--dir", required=True)
        if name == "getcert":
            s.add_argument("--serial", required=True)
    s = sub.add_parser("pkcsreq", parents=[common, request],
                       help="write DIR/pkcsreq.pem for `scep-submit -p` (offline)")
    s.add_argument("--ca-certs", required=True, help="the GetCACert certificates (PEM)")
    s = sub.add_parser("decrypt", help="open scep-submit's SUCCESS output with DIR/signer-key.pem")
    s.add_argument("--dir", required=True)
    s.add_argument("input", nargs="?", default="-")
    args = p.parse_args(argv)
    if getattr(args, "renew_cert", None) and not args.renew_key:
        p.error("--renew-cert needs --renew-key")
    handlers = {"caps": cmd_caps, "cacert": cmd_cacert, "enroll": cmd_enroll, "poll": cmd_poll,
                "getcert": cmd_getcert_getcrl, "getcrl": cmd_getcert_getcrl, "pkcsreq": cmd_pkcsreq,
                "decrypt": cmd_decrypt}
    try:
        return handlers[args.command](args)
    except (ScepError, OSError) as e:
        print(f"error: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
