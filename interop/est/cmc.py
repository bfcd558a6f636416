"""An independent EST /fullcmc client (RFC 7030 §4.3, RFC 5272): builds Full PKI Requests with
pyasn1-alt-modules' RFC 6402/5652 codecs and `cryptography` (not privca's code), posts them, and
checks the Full PKI Responses: signature by the issuing CA over the signed attributes,
messageDigest, CMCStatusInfoV2, and the issued certificate.

usage: cmc.py ROOT_PEM BASE_URL USER PASSWORD OUT_DIR
Prints one "ok"/"FAIL" line per check; exits 1 if any check failed.
"""
import base64
import hashlib
import ssl
import sys
import urllib.error
import urllib.request

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyasn1.codec.der import decoder, encoder
from pyasn1.type import tag, univ
from pyasn1_alt_modules import rfc5652, rfc6402

ROOT, BASE, USER, PASSWORD, OUT = sys.argv[1:6]
CTX = ssl.create_default_context(cafile=ROOT)
FAILED = 0
PASSED = 0


def check(what, cond):
    global FAILED, PASSED
    if cond:
        PASSED += 1
        print(f"  ok   {what}")
    else:
        FAILED += 1
        print(f"  FAIL {what}")


def post(path, body, content_type="application/pkcs7-mime; smime-type=CMC-request", auth=True):
    req = urllib.request.Request(BASE + path, data=base64.encodebytes(body), method="POST")
    req.add_header("Content-Type", content_type)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode())
    try:
        with urllib.request.urlopen(req, context=CTX) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def csr_for(name, key):
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )


def full_pki_request(csr_der, signing_key, controls=()):
    """SignedData(id-cct-PKIData) with one tcr, signed with `signing_key` (SKI signer id)."""
    data = rfc6402.PKIData()
    for i, (oid, value) in enumerate(controls):
        attr = rfc6402.TaggedAttribute()
        attr["bodyPartID"] = 100 + i
        attr["attrType"] = oid
        attr["attrValues"].append(value)
        data["controlSequence"].append(attr)
    tcr = rfc6402.TaggedRequest()
    tcr["tcr"]["bodyPartID"] = 1
    tcr["tcr"]["certificationRequest"] = decoder.decode(csr_der, asn1Spec=rfc6402.CertificationRequest())[0]
    data["reqSequence"].append(tcr)
    content = encoder.encode(data)

    attrs = rfc5652.SignedAttributes().subtype(implicitTag=tag.Tag(tag.tagClassContext, tag.tagFormatConstructed, 0))
    plain = rfc5652.SignedAttributes()
    for oid, value in (
        (rfc5652.id_contentType, rfc6402.id_cct_PKIData),
        (rfc5652.id_messageDigest, univ.OctetString(hashlib.sha256(content).digest())),
    ):
        a = rfc5652.Attribute()
        a["attrType"] = oid
        a["attrValues"].append(value)
        attrs.append(a)
        plain.append(a)
    # The signature covers the attributes as a DER SET OF (explicit SET tag, RFC 5652 §5.4).
    to_sign = encoder.encode(plain)
    signature = signing_key.sign(to_sign, ec.ECDSA(hashes.SHA256()))

    pub = signing_key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    si = rfc5652.SignerInfo()
    si["version"] = 3
    si["sid"]["subjectKeyIdentifier"] = hashlib.sha1(pub).digest()
    si["digestAlgorithm"]["algorithm"] = univ.ObjectIdentifier("2.16.840.1.101.3.4.2.1")
    si["signedAttrs"] = attrs
    si["signatureAlgorithm"]["algorithm"] = univ.ObjectIdentifier("1.2.840.10045.4.3.2")
    si["signature"] = signature

    sd = rfc5652.SignedData()
    sd["version"] = 3
    alg = rfc5652.DigestAlgorithmIdentifier()
    alg["algorithm"] = univ.ObjectIdentifier("2.16.840.1.101.3.4.2.1")
    sd["digestAlgorithms"].append(alg)
    sd["encapContentInfo"]["eContentType"] = rfc6402.id_cct_PKIData
    sd["encapContentInfo"]["eContent"] = content
    sd["signerInfos"].append(si)
    ci = rfc5652.ContentInfo()
    ci["contentType"] = rfc5652.id_signedData
    ci["content"] = sd
    return encoder.encode(ci)


def parse_response(body, ca):
    """(CMCStatusInfoV2, [certificates]) after checking the CA's signature; None if unsigned/bad."""
    der = base64.b64decode(body)
    ci, _ = decoder.decode(der, asn1Spec=rfc5652.ContentInfo())
    sd, _ = decoder.decode(ci["content"], asn1Spec=rfc5652.SignedData())
    if sd["encapContentInfo"]["eContentType"] != rfc6402.id_cct_PKIResponse:
        return None
    content = bytes(sd["encapContentInfo"]["eContent"])
    si = sd["signerInfos"][0]
    attrs = {str(a["attrType"]): a["attrValues"][0] for a in si["signedAttrs"]}
    md = decoder.decode(attrs[str(rfc5652.id_messageDigest)], asn1Spec=univ.OctetString())[0]
    if bytes(md) != hashlib.sha256(content).digest():
        return None
    plain = rfc5652.SignedAttributes()
    for a in si["signedAttrs"]:
        plain.append(a)
    signed = encoder.encode(plain)
    ca.public_key().verify(bytes(si["signature"]), signed, ec.ECDSA(hashes.SHA256()))
    response, _ = decoder.decode(content, asn1Spec=rfc6402.PKIResponse())
    ctrl = response["controlSequence"][0]
    if ctrl["attrType"] != rfc6402.id_cmc_statusInfoV2:
        return None
    info, _ = decoder.decode(ctrl["attrValues"][0], asn1Spec=rfc6402.CMCStatusInfoV2())
    certs = [x509.load_der_x509_certificate(encoder.encode(c["certificate"])) for c in sd["certificates"]]
    return info, certs


# The issuing CA (from /cacerts) verifies the responses.
with urllib.request.urlopen(BASE + "/cacerts", context=CTX) as r:
    p7 = base64.b64decode(r.read())
ci, _ = decoder.decode(p7, asn1Spec=rfc5652.ContentInfo())
sd, _ = decoder.decode(ci["content"], asn1Spec=rfc5652.SignedData())
cas = [x509.load_der_x509_certificate(encoder.encode(c["certificate"])) for c in sd["certificates"]]
issuing = [c for c in cas if c.subject != c.issuer][0]

key = ec.generate_private_key(ec.SECP256R1())
csr = csr_for("cmc1.example.test", key)
status, headers, body = post("/fullcmc", full_pki_request(csr, key))
check("fullcmc: 200 application/pkcs7-mime; smime-type=CMC-response",
      status == 200 and headers.get("Content-Type", "").startswith("application/pkcs7-mime"))
parsed = parse_response(body, issuing) if status == 200 else None
check("fullcmc: response signed by the issuing CA, messageDigest matches", parsed is not None)
if parsed:
    info, certs = parsed
    check("fullcmc: CMCStatusInfoV2 success for body part 1",
          int(info["cMCStatus"]) == 0 and int(info["bodyList"][0]["bodyPartID"]) == 1)
    leaf = [c for c in certs if c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "cmc1.example.test"]
    check("fullcmc: the certificate is in the response", len(leaf) == 1)
    if leaf:
        check("fullcmc: certificate key = request key",
              leaf[0].public_key().public_numbers() == key.public_key().public_numbers())
        with open(f"{OUT}/cmc1.pem", "wb") as f:
            f.write(leaf[0].public_bytes(serialization.Encoding.PEM))


def expect_failure(what, request, fail_info, http_status=400):
    status, _, body = post("/fullcmc", request)
    parsed = parse_response(body, issuing) if body else None
    ok = status == http_status and parsed is not None
    if ok:
        info, _ = parsed
        ok = int(info["cMCStatus"]) == 2 and int(info["otherInfo"]["failInfo"]) == fail_info
    check(f"{what}: HTTP {http_status}, signed CMC failed/{fail_info}", ok)


key2 = ec.generate_private_key(ec.SECP256R1())
other = ec.generate_private_key(ec.SECP256R1())
expect_failure("fullcmc signed by another key", full_pki_request(csr_for("cmc2.example.test", key2), other), 1)
txid = univ.Integer(42)
expect_failure("fullcmc with a control attribute (transactionId)",
               full_pki_request(csr_for("cmc3.example.test", key2), key2, [(rfc6402.id_cmc_transactionId, txid)]), 2)
status, _, _ = post("/fullcmc", b"garbage that is not CMS")
check("fullcmc garbage: 400", status == 400)
status, _, _ = post("/fullcmc", full_pki_request(csr, key), content_type="application/pkcs10")
check("fullcmc wrong content type: 415", status == 415)
status, headers, _ = post("/fullcmc", full_pki_request(csr, key), auth=False)
check("fullcmc without credentials: 401 with WWW-Authenticate", status == 401 and "Basic" in headers.get("WWW-Authenticate", ""))

print(f"cmc: {PASSED} passed, {FAILED} failed")
sys.exit(1 if FAILED else 0)
