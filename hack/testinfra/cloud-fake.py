#!/usr/bin/env python3
"""Loopback stand-ins for the cloud endpoints registry logins use, for tests.

AWS: the instance metadata service v2 (token, role, role credentials), STS AssumeRoleWithWebIdentity, and ECR
GetAuthorizationToken, whose SigV4 signature is checked here by an implementation of its own (Python's hmac and
hashlib, from AWS's specification), independent of the Rust signer under test.
GCP: the metadata server's token, the STS token exchange of workload identity federation, service account
impersonation (generateAccessToken).
Azure: the Entra ID token endpoint (client assertion of workload identity), the IMDS managed identity token,
and ACR's /oauth2/exchange.

  cloud-fake.py PORT STATE_FILE
STATE_FILE (JSON) holds: keys {access key id: secret}, web_identity_token, sts_credentials {id, secret, token},
imds_credentials {id, secret, token}, registry_username, registry_password (the ECR login), gcp_token,
gcp_subject_token, azure_assertion, acr_refresh_token. Requests are appended to STATE_FILE.log, one JSON line
each (path, target, verdict), for the test to read.
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
        if self.path.startswith("/computeMetadata/v1/instance/service-accounts/default/token"):
            ok = self.headers.get("Metadata-Flavor") == "Google"
            log({"path": self.path, "verdict": "gcp metadata" if ok else "gcp metadata refused"})
            if not ok:
                return self.reply(403, "Missing Metadata-Flavor:Google header", "text/plain")
            return self.reply(200, json.dumps({"access_token": STATE["gcp_token"], "expires_in": 3599,
                                               "token_type": "Bearer"}))
        if self.path.startswith("/metadata/identity/oauth2/token"):
            ok = self.headers.get("Metadata") == "true" and "resource=" in self.path
            log({"path": self.path, "verdict": "azure imds" if ok else "azure imds refused"})
            if not ok:
                return self.reply(400, json.dumps({"error": "invalid_request",
                                                   "error_description": "Required metadata header not specified"}))
            return self.reply(200, json.dumps({"access_token": "aad-token-managed-identity", "expires_in": "3599",
                                               "token_type": "Bearer"}))
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
        path = urllib.parse.urlsplit(self.path).path
        form = dict(urllib.parse.parse_qsl(body.decode(errors="replace")))
        if path == "/v1/token":
            ok = (form.get("grant_type") == "urn:ietf:params:oauth:grant-type:token-exchange"
                  and form.get("subject_token") == STATE["gcp_subject_token"])
            log({"path": path, "verdict": "gcp sts" if ok else "gcp sts refused"})
            if not ok:
                return self.reply(400, json.dumps({"error": "invalid_grant",
                                                   "error_description": "The incoming token is not valid"}))
            return self.reply(200, json.dumps({"access_token": "federated-token", "expires_in": 3600,
                                               "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                                               "token_type": "Bearer"}))
        if path.endswith(":generateAccessToken"):
            ok = h.get("authorization") == "Bearer federated-token"
            log({"path": path, "verdict": "gcp impersonation" if ok else "gcp impersonation refused"})
            if not ok:
                return self.reply(401, json.dumps({"error": {"code": 401, "message": "invalid credentials"}}))
            return self.reply(200, json.dumps({"accessToken": STATE["gcp_token"],
                                               "expireTime": "2099-01-01T00:00:00Z"}))
        if path.endswith("/oauth2/v2.0/token"):
            ok = (form.get("client_assertion") == STATE["azure_assertion"] and form.get("client_id")
                  and form.get("grant_type") == "client_credentials")
            log({"path": path, "verdict": "azure aad" if ok else "azure aad refused"})
            if not ok:
                return self.reply(401, json.dumps({"error": "invalid_client", "error_description":
                                                   "AADSTS700213: No matching federated identity record found"}))
            return self.reply(200, json.dumps({"access_token": "aad-token-workload-identity",
                                               "expires_in": 3599, "token_type": "Bearer"}))
        if path == "/oauth2/exchange":
            ok = (form.get("grant_type") == "access_token"
                  and form.get("access_token", "").startswith("aad-token-") and form.get("service"))
            log({"path": path, "verdict": "acr exchange" if ok else "acr exchange refused"})
            if not ok:
                return self.reply(401, json.dumps({"errors": [{"code": "UNAUTHORIZED",
                                                               "message": "invalid access token"}]}))
            return self.reply(200, json.dumps({"refresh_token": STATE["acr_refresh_token"]}))
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
