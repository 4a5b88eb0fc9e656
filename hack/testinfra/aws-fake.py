#!/usr/bin/env python3
"""Loopback stand-ins for the AWS endpoints an ECR login uses, for tests: the instance metadata service v2
(token, role, role credentials), STS AssumeRoleWithWebIdentity, and ECR GetAuthorizationToken, whose SigV4
signature is checked here by an implementation of its own (Python's hmac and hashlib, from AWS's
specification), independent of the Rust signer under test.

  aws-fake.py PORT STATE_FILE
STATE_FILE (JSON) holds: keys {access key id: secret}, web_identity_token, sts_credentials {id, secret, token},
imds_credentials {id, secret, token}, registry_username, registry_password. Requests are appended to
STATE_FILE.log, one JSON line each (path, target, verdict), for the test to read.
"""
import base64, hashlib, hmac, json, sys, time, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1])
STATE = json.load(open(sys.argv[2]))
LOG = sys.argv[2] + ".log"
IMDS_TOKEN = "imds-session-token"
ROLE = "tagpilot-node-role"


def log(entry):
    with open(LOG, "a") as f:
        f.write(json.dumps(entry) + "\n")


def sign(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def enc(s, keep_slash):
    return urllib.parse.quote(s, safe="-_.~" + ("/" if keep_slash else ""))


def verify_sigv4(method, path, query, headers, body):
    """Returns None when the Authorization header is a valid SigV4 signature, else the reason."""
    auth = headers.get("authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return "missing AWS4-HMAC-SHA256 authorization"
    parts = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 "):].split(","))
    key_id, date, region, service, term = parts["Credential"].split("/")
    secret = STATE["keys"].get(key_id)
    if secret is None:
        return "The security token included in the request is invalid."
    signed = parts["SignedHeaders"].split(";")
    amz_date = headers.get("x-amz-date", "")
    canonical_query = "&".join(
        "%s=%s" % (enc(k, False), enc(v, False))
        for k, v in sorted(urllib.parse.parse_qsl(query, keep_blank_values=True)))
    canonical_headers = "".join("%s:%s\n" % (h, " ".join(headers.get(h, "").split())) for h in signed)
    canonical = "\n".join([method, enc(path, True), canonical_query, canonical_headers, ";".join(signed),
                           hashlib.sha256(body).hexdigest()])
    scope = "/".join([date, region, service, term])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    k = sign(("AWS4" + secret).encode(), date)
    k = sign(k, region)
    k = sign(k, service)
    k = sign(k, "aws4_request")
    expected = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, parts["Signature"]):
        return "The request signature we calculated does not match the signature you provided."
    if service != "ecr" or "host" not in signed or "x-amz-date" not in signed:
        return "wrong scope or signed headers"
    return None


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, code, body, ctype="application/json"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def headers_lower(self):
        return {k.lower(): v for k, v in self.headers.items()}

    def do_PUT(self):
        if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            log({"path": self.path, "verdict": "imds token"})
            return self.reply(200, IMDS_TOKEN, "text/plain")
        self.reply(400, "bad request", "text/plain")

    def do_GET(self):
        if self.headers.get("X-aws-ec2-metadata-token") != IMDS_TOKEN:
            log({"path": self.path, "verdict": "imds unauthorized"})
            return self.reply(401, "", "text/plain")
        if self.path == "/latest/meta-data/iam/security-credentials/":
            return self.reply(200, ROLE, "text/plain")
        if self.path == "/latest/meta-data/iam/security-credentials/" + ROLE:
            c = STATE["imds_credentials"]
            log({"path": self.path, "verdict": "imds credentials"})
            return self.reply(200, json.dumps({"Code": "Success", "AccessKeyId": c["id"],
                                               "SecretAccessKey": c["secret"], "Token": c["token"],
                                               "Expiration": "2099-01-01T00:00:00Z"}))
        self.reply(404, "", "text/plain")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        h = self.headers_lower()
        target = h.get("x-amz-target", "")
        if target.endswith(".GetAuthorizationToken"):
            url = urllib.parse.urlsplit(self.path)
            why = verify_sigv4("POST", url.path, url.query, h, body)
            log({"path": self.path, "target": target, "verdict": why or "signed"})
            if why:
                return self.reply(403, json.dumps({"__type": "InvalidSignatureException", "message": why}))
            token = base64.b64encode(("%s:%s" % (STATE["registry_username"],
                                                 STATE["registry_password"])).encode()).decode()
            return self.reply(200, json.dumps({"authorizationData": [{
                "authorizationToken": token, "expiresAt": time.time() + 43200,
                "proxyEndpoint": "https://123456789012.dkr.ecr.us-east-1.amazonaws.com"}]}))
        form = dict(urllib.parse.parse_qsl(body.decode()))
        if form.get("Action") == "AssumeRoleWithWebIdentity":
            ok = form.get("WebIdentityToken") == STATE["web_identity_token"] and form.get("RoleArn")
            log({"path": self.path, "target": "sts", "verdict": "assumed" if ok else "refused"})
            if not ok:
                return self.reply(400, "<ErrorResponse><Error><Code>InvalidIdentityToken</Code>"
                                       "<Message>Couldn't retrieve verification key from your identity provider"
                                       "</Message></Error></ErrorResponse>", "text/xml")
            c = STATE["sts_credentials"]
            return self.reply(200, "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult>"
                                   "<Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey>"
                                   "<SessionToken>%s</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration>"
                                   "</Credentials></AssumeRoleWithWebIdentityResult>"
                                   "</AssumeRoleWithWebIdentityResponse>" % (c["id"], c["secret"], c["token"]),
                              "text/xml")
        self.reply(400, json.dumps({"message": "unknown request"}))


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
