#!/usr/bin/env python3
"""Docker-distribution bearer-token server for tests (stdlib + the openssl CLI).

Usage: token-server.py PORT SIGNING_KEY.pem SIGNING_CERT.pem ISSUER USER:PASS [EXTRA_USERS_FILE [TLS_CERT TLS_KEY]]

With TLS_CERT and TLS_KEY it serves HTTPS (a token realm for an HTTPS registry must be HTTPS: clients refuse a
plain-HTTP realm there).

Grants every requested action on every requested scope to USER:PASS, and to every USER:PASS line of
EXTRA_USERS_FILE (read on each request: tests add the logins cloud providers hand out). Anonymous or wrong credentials get 401
with a JSON error, as real token servers do. Binds 127.0.0.1 only."""
import base64, json, ssl, subprocess, sys, time, uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse, parse_qs

port, key, cert, issuer, userpass = sys.argv[1:6]
extra_users = sys.argv[6] if len(sys.argv) > 6 else None
tls = sys.argv[7:9] if len(sys.argv) > 8 else None


def known(given):
    if given == userpass:
        return True
    try:
        return extra_users is not None and given in open(extra_users).read().splitlines()
    except OSError:
        return False
der = subprocess.run(["openssl", "x509", "-in", cert, "-outform", "DER"], check=True, capture_output=True).stdout
b64u = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def sign(claims):
    header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
    msg = (b64u(json.dumps(header).encode()) + "." + b64u(json.dumps(claims).encode())).encode()
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=msg, check=True, capture_output=True).stdout
    return msg.decode() + "." + b64u(sig)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, code, body, extra=()):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        u = urlparse(self.path)
        q = parse_qs(u.query)
        auth = self.headers.get("Authorization", "")
        try:
            ok = auth.startswith("Basic ") and known(base64.b64decode(auth[6:]).decode())
        except Exception:
            ok = False
        if not ok:
            self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "invalid username or password"}]},
                       [("WWW-Authenticate", 'Basic realm="token"')])
            return
        access = []
        for s in q.get("scope", []):
            typ, _, rest = s.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": typ, "name": name, "actions": [a for a in actions.split(",") if a]})
        now = int(time.time())
        tok = sign({"iss": issuer, "sub": base64.b64decode(auth[6:]).decode().split(":")[0], "aud": q.get("service", [""])[0],
                    "exp": now + 300, "nbf": now - 10, "iat": now, "jti": str(uuid.uuid4()), "access": access})
        self.reply(200, {"token": tok, "access_token": tok, "expires_in": 300,
                         "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))})

    def log_message(self, *a):
        pass


server = ThreadingHTTPServer(("127.0.0.1", int(port)), Handler)
if tls:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls[0], tls[1])
    server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
