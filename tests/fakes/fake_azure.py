#!/usr/bin/python3
"""A strict fake of the Azure endpoints spectra-sentinel talks to for tokens
and ingestion, for the integration tests. Python 3 standard library only;
client assertions are verified by `openssl dgst -verify`.

Roles (one process, one port, so that tokens issued by the token roles are
the only ones the ingestion role accepts):

  POST /{tenant}/oauth2/v2.0/token          Microsoft Entra ID v2.0 token
       endpoint: client_credentials with a client secret, a certificate
       client assertion (RS256 + x5t or PS256 + x5t#S256, signature checked
       against the test certificate's public key, aud/iss/sub/jti/nbf/exp
       checked, jti replay refused) or a federated assertion (compared with
       the current contents of the token file, so a stale one fails).
  GET  /metadata/identity/oauth2/token       IMDS (api-version 2018-02-01,
       Metadata: true, optional client_id/object_id/msi_res_id); numbers as
       strings.
  GET  /appservice/token                     App Service (api-version
       2019-08-01, X-IDENTITY-HEADER).
  GET  /arc/token                            Azure Arc (api-version
       2020-06-01): without Authorization a fresh key file is written to the
       key directory and 401 carries WWW-Authenticate: Basic realm=<path>;
       with Authorization: Basic <key> a token is issued.
  POST /dataCollectionRules/{dcr}/streams/{stream}?api-version=2023-01-01
       Logs Ingestion: Bearer token issued here for the monitor audience,
       DCR id and stream (404), Content-Type application/json, gzip, the
       1,048,576-byte limit on compressed and decompressed bodies (413
       ContentLengthLimitExceeded), a JSON array of objects with only the 17
       columns of SpectraDetectLogs_CL and their JSON types, the 30-minute
       TimeGenerated span (400 RecordsTimeRangeIsMoreThan30Minutes), and a
       poison marker: a record whose task_id starts with "poison" fails the
       whole request with 400 InvalidRecord, as Azure rejects a whole call.
       Accepted records are appended to --records (one JSON line each).

Control (for the test scripts, on the same port, under /_fake/):
  POST /_fake/faults   body: JSON list of faults queued for a role
       {"role":"ingest"|"token"|"imds"|"appservice"|"arc",
        "status":429, "headers":{"Retry-After":"2"}, "body":{...},
        "drop":true (close without answering), "truncate":true (close in
        the middle of an answer), "delay":2.5 (seconds before
        answering; without status or drop the request is then served
        normally), "skip":n (let n requests of the role pass first)}
  POST /_fake/config   body: JSON object merged into the settings
       (expires_in, forbid (403 for ingestion), arc_realm (a path to
       announce instead of the key file), imds_user (the user-assigned id
       IMDS requires))
  GET  /_fake/stats    counters per role, as JSON

Every request is also logged as one JSON line to --log (role, status,
request id, record count, time) for assertions on timing and request ids.

Start: fake_azure.py --port-file F [options]; it listens on 127.0.0.1 port
0 and writes the port to F (and prints it) once it accepts connections.
"""

import argparse
import base64
import datetime
import gzip
import hashlib
import json
import os
import re
import secrets
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import zlib
from http.server import BaseHTTPRequestHandler, HTTPServer

LIMIT = 1048576
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MONITOR_RESOURCE = "https://monitor.azure.com/"
RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$")

# The columns of SpectraDetectLogs_CL (SPEC section 2) and their JSON types.
COLUMNS = {
    "TimeGenerated": "datetime", "task_id": "string", "submitted": "int",
    "processed": "int", "process_duration": "int", "direct_sender": "string",
    "worker_address": "dynamic", "worker_hostname": "string",
    "worker_ip": "dynamic", "forwarded_for": "dynamic", "info": "dynamic",
    "classification": "dynamic", "index": "int", "parent": "int",
    "story": "dynamic", "tags": "dynamic", "interesting_strings": "dynamic",
}


def b64url_decode(s):
    if not re.fullmatch(r"[A-Za-z0-9_-]*", s):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def parse_time(s):
    m = RFC3339.match(s)
    if not m:
        return None
    try:
        t = datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t.timestamp()


class Client:
    """A registered application: a secret, a certificate or a federated
    token file."""

    def __init__(self, spec):
        cid, kind, value = spec.split(":", 2)
        self.client_id = cid
        self.kind = kind
        self.value = value
        if kind == "cert":
            der = subprocess.run(
                ["openssl", "x509", "-in", value, "-outform", "DER"],
                check=True, capture_output=True).stdout
            self.x5t = b64url(hashlib.sha1(der).digest())
            self.x5t_s256 = b64url(hashlib.sha256(der).digest())
            pub = subprocess.run(
                ["openssl", "x509", "-in", value, "-pubkey", "-noout"],
                check=True, capture_output=True).stdout
            fd, self.pubkey = tempfile.mkstemp(suffix=".pub.pem")
            os.write(fd, pub)
            os.close(fd)
        elif kind not in ("secret", "federated"):
            raise SystemExit("client kind must be secret, cert or federated")


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.clients = {}
        for spec in args.client or []:
            c = Client(spec)
            self.clients[c.client_id] = c
        self.tokens = {}        # token -> (audience, expires_at)
        self.jtis = set()
        self.request_ids = set()
        self.concurrent = 0
        self.faults = []
        self.stats = {}
        self.arc_key = None
        self.config = {
            "expires_in": args.expires_in,
            "forbid": False,
            "arc_realm": None,
            "imds_user": args.imds_user,
        }

    def count(self, key):
        with self.lock:
            self.stats[key] = self.stats.get(key, 0) + 1

    def pop_fault(self, role):
        """The next fault queued for role. A fault with "skip": n lets n
        requests of its role pass first."""
        with self.lock:
            for i, f in enumerate(self.faults):
                if f.get("role", "ingest") == role:
                    if f.get("skip", 0) > 0:
                        f["skip"] -= 1
                        return None
                    return self.faults.pop(i)
        return None

    def issue(self, audience):
        tok = self.args.token_prefix + secrets.token_urlsafe(32)
        exp_in = int(self.config["expires_in"])
        with self.lock:
            self.tokens[tok] = (audience, time.time() + exp_in)
        return tok, exp_in

    def log(self, entry):
        if not self.args.log:
            return
        entry["t"] = round(time.time(), 3)
        with self.lock:
            with open(self.args.log, "a") as f:
                f.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-azure/1.0"

    def log_message(self, fmt, *a):
        if self.server.state.args.verbose:
            sys.stderr.write("fake: " + (fmt % a) + "\n")

    # ---- plumbing -------------------------------------------------------

    def read_body(self):
        n = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding"):
            # curl sends Content-Length for POSTFIELDS; chunked is a bug.
            self.reply(400, {"error": {"code": "ChunkedNotExpected",
                                       "message": "chunked body"}})
            return None
        if n is None:
            return b""
        n = int(n)
        data = b""
        while len(data) < n:
            chunk = self.rfile.read(min(65536, n - len(data)))
            if not chunk:
                break
            data += chunk
        return data

    def reply(self, status, body=None, headers=None):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)
        self.last_status = status

    def apply_fault(self, role):
        """Applies a queued fault. Returns True when it answered."""
        f = self.server.state.pop_fault(role)
        if not f:
            return False
        self.server.state.count(role + "_faults")
        if f.get("delay"):
            time.sleep(float(f["delay"]))
        if f.get("truncate"):
            # A response cut short: the headers promise more than is sent.
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: "
                             b"application/json\r\nContent-Length: 1000"
                             b"\r\n\r\n{\"partial\":")
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            self.last_status = 0
            return True
        if f.get("drop"):
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            self.last_status = 0
            return True
        if "status" in f:
            self.reply(int(f["status"]), f.get("body"), f.get("headers"))
            return True
        return False

    def entra_error(self, status, code, aadsts, desc):
        self.reply(status, {
            "error": code,
            "error_description": "AADSTS%d: %s Trace ID: %s Correlation ID: "
                                 "%s Timestamp: %s" % (
                                     aadsts, desc, secrets.token_hex(8),
                                     secrets.token_hex(8),
                                     time.strftime("%Y-%m-%d %H:%M:%SZ",
                                                   time.gmtime())),
            "error_codes": [aadsts],
            "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
            "trace_id": secrets.token_hex(8),
            "correlation_id": secrets.token_hex(8),
        })

    # ---- dispatch -------------------------------------------------------

    def do_GET(self):
        self.last_status = None
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/_fake/stats":
            with self.server.state.lock:
                stats = dict(self.server.state.stats)
            return self.reply(200, stats)
        if url.path == "/metadata/identity/oauth2/token":
            return self.managed("imds", url)
        if url.path == "/appservice/token":
            return self.managed("appservice", url)
        if url.path == "/arc/token":
            return self.managed("arc", url)
        self.reply(404, {"error": {"code": "NotFound", "message": self.path}})

    def do_POST(self):
        self.last_status = None
        url = urllib.parse.urlsplit(self.path)
        body = self.read_body()
        if body is None:
            return
        st = self.server.state
        if url.path == "/_fake/faults":
            with st.lock:
                st.faults.extend(json.loads(body))
            return self.reply(200, {"queued": len(st.faults)})
        if url.path == "/_fake/config":
            with st.lock:
                st.config.update(json.loads(body))
            return self.reply(200, st.config)
        m = re.fullmatch(r"/([^/]+)/oauth2/v2\.0/token", url.path)
        if m:
            return self.token(m.group(1), body)
        m = re.fullmatch(r"/dataCollectionRules/([^/]+)/streams/([^/]+)",
                         url.path)
        if m:
            return self.ingest(m.group(1), m.group(2), url.query, body)
        self.reply(404, {"error": {"code": "NotFound", "message": url.path}})

    # ---- Entra ID -------------------------------------------------------

    def token(self, tenant, body):
        st = self.server.state
        st.count("token_requests")
        if self.apply_fault("token"):
            return
        ctype = self.headers.get("Content-Type", "")
        if ctype.split(";")[0].strip() != "application/x-www-form-urlencoded":
            return self.entra_error(400, "invalid_request", 900144,
                                    "The request body must be a form.")
        try:
            pairs = urllib.parse.parse_qsl(body.decode("utf-8"),
                                           keep_blank_values=True,
                                           strict_parsing=True)
        except (ValueError, UnicodeDecodeError):
            return self.entra_error(400, "invalid_request", 900144,
                                    "Malformed form body.")
        form = {}
        for k, v in pairs:
            if k in form:
                return self.entra_error(400, "invalid_request", 90015,
                                        "Duplicate parameter %s." % k)
            form[k] = v
        if tenant != st.args.tenant:
            return self.entra_error(400, "invalid_request", 90002,
                                    "Tenant '%s' not found." % tenant)
        if form.get("grant_type") != "client_credentials":
            return self.entra_error(400, "unsupported_grant_type", 70003,
                                    "The app requested an unsupported grant "
                                    "type.")
        for need in ("client_id", "scope"):
            if not form.get(need):
                return self.entra_error(400, "invalid_request", 900144,
                                        "The request body must contain the "
                                        "following parameter: '%s'." % need)
        client = st.clients.get(form["client_id"])
        if not client:
            return self.entra_error(400, "unauthorized_client", 700016,
                                    "Application with identifier '%s' was "
                                    "not found." % form["client_id"])
        scope = form["scope"]
        if scope not in st.args.scope:
            return self.entra_error(400, "invalid_scope", 1002012,
                                    "The provided value for scope %s is not "
                                    "valid." % scope)
        has_secret = "client_secret" in form
        has_assert = ("client_assertion" in form or
                      "client_assertion_type" in form)
        if has_secret == has_assert:
            return self.entra_error(400, "invalid_request", 7000218,
                                    "The request body must contain exactly "
                                    "one of client_secret or "
                                    "client_assertion.")
        if client.kind == "secret":
            if form.get("client_secret") != client.value:
                return self.entra_error(401, "invalid_client", 7000215,
                                        "Invalid client secret provided.")
        else:
            if form.get("client_assertion_type") != JWT_BEARER:
                return self.entra_error(400, "invalid_request", 700022,
                                        "client_assertion_type is not "
                                        "jwt-bearer.")
            assertion = form.get("client_assertion", "")
            if client.kind == "federated":
                try:
                    with open(client.value) as f:
                        current = f.read().strip()
                except OSError:
                    current = None
                if assertion != current:
                    return self.entra_error(401, "invalid_client", 700024,
                                            "Client assertion is not the "
                                            "current federated token.")
            else:
                aud = "http://%s/%s/oauth2/v2.0/token" % (
                    self.headers.get("Host"), tenant)
                if st.args.tls:
                    aud = "https" + aud[4:]
                err = self.check_assertion(client, assertion, aud)
                if err:
                    return self.entra_error(401, "invalid_client", err[0],
                                            err[1])
        audience = scope[:-len("/.default")] if scope.endswith(
            "/.default") else scope
        tok, exp_in = st.issue(audience.rstrip("/"))
        st.count("tokens_issued")
        st.log({"role": "token", "status": 200, "client_id": client.client_id})
        self.reply(200, {"token_type": "Bearer", "expires_in": exp_in,
                         "ext_expires_in": exp_in, "access_token": tok})

    def check_assertion(self, client, jwt, aud):
        parts = jwt.split(".")
        if len(parts) != 3:
            return (700025, "Client assertion is not a compact JWT.")
        try:
            hdr = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            sig = b64url_decode(parts[2])
        except ValueError:
            return (700025, "Client assertion is not valid base64url JSON.")
        alg = hdr.get("alg")
        if hdr.get("typ") != "JWT":
            return (700025, "typ is not JWT.")
        if alg == "PS256":
            if hdr.get("x5t#S256") != client.x5t_s256:
                return (700027, "x5t#S256 does not match a registered "
                                "certificate.")
        elif alg == "RS256":
            if hdr.get("x5t") != client.x5t:
                return (700027, "x5t does not match a registered "
                                "certificate.")
        else:
            return (700025, "Unsupported alg %s." % alg)
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "in"), "wb") as f:
                f.write((parts[0] + "." + parts[1]).encode())
            with open(os.path.join(d, "sig"), "wb") as f:
                f.write(sig)
            cmd = ["openssl", "dgst", "-sha256", "-verify", client.pubkey,
                   "-signature", os.path.join(d, "sig")]
            if alg == "PS256":
                cmd += ["-sigopt", "rsa_padding_mode:pss",
                        "-sigopt", "rsa_pss_saltlen:digest"]
            cmd.append(os.path.join(d, "in"))
            ok = subprocess.run(cmd, capture_output=True).returncode == 0
        if not ok:
            return (700027, "Client assertion failed signature validation.")
        if claims.get("aud") != aud:
            return (700021, "Client assertion audience claim does not match "
                            "the token endpoint.")
        if claims.get("iss") != client.client_id or \
                claims.get("sub") != client.client_id:
            return (700023, "Client assertion iss/sub is not the client id.")
        now = time.time()
        nbf, exp = claims.get("nbf"), claims.get("exp")
        if not isinstance(nbf, int) or not isinstance(exp, int):
            return (700024, "nbf and exp must be integers.")
        if nbf > now + 300 or exp <= now or exp - nbf > 3600:
            return (700024, "Client assertion is not within its valid time "
                            "range.")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            return (700025, "jti is missing.")
        st = self.server.state
        with st.lock:
            if jti in st.jtis:
                return (700025, "jti was used before (replay).")
            st.jtis.add(jti)
        return None

    # ---- managed identity ------------------------------------------------

    def managed(self, role, url):
        st = self.server.state
        st.count(role + "_requests")
        if self.apply_fault(role):
            return
        q = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        want_api = {"imds": "2018-02-01", "appservice": "2019-08-01",
                    "arc": "2020-06-01"}[role]
        if q.get("api-version") != want_api:
            return self.mi_error(role, 400, "invalid_request",
                                 "api-version %s is not supported" %
                                 q.get("api-version"))
        if role in ("imds", "arc") and self.headers.get("Metadata") != "true":
            return self.mi_error(role, 400, "invalid_request",
                                 "Required metadata header not specified")
        if role == "appservice" and \
                self.headers.get("X-IDENTITY-HEADER") != st.args.identity_header:
            return self.mi_error(role, 401, "unauthorized",
                                 "X-IDENTITY-HEADER is missing or wrong")
        resource = q.get("resource")
        if resource not in st.args.resource:
            return self.mi_error(role, 400, "invalid_resource",
                                 "resource %s is not known" % resource)
        ids = [(k, q[k]) for k in ("client_id", "object_id", "msi_res_id",
                                   "mi_res_id") if k in q]
        if len(ids) > 1:
            return self.mi_error(role, 400, "invalid_request",
                                 "more than one identity selector")
        want_user = st.config.get("imds_user") if role == "imds" else None
        if want_user:
            if not ids or ids[0][1] != want_user:
                return self.mi_error(role, 400, "invalid_request",
                                     "Identity not found")
        elif ids:
            return self.mi_error(role, 400, "invalid_request",
                                 "Identity not found")
        if role == "arc":
            auth = self.headers.get("Authorization")
            if auth is None:
                keydir = st.args.arc_key_dir
                name = secrets.token_hex(8) + ".key"
                key = secrets.token_urlsafe(24)
                path = os.path.join(keydir, name)
                with open(path, "w") as f:
                    f.write(key)
                with st.lock:
                    st.arc_key = key
                realm = st.config.get("arc_realm") or path
                st.count("arc_challenges")
                return self.reply(401, {"error": "unauthorized"}, {
                    "WWW-Authenticate": "Basic realm=" + realm})
            with st.lock:
                key = st.arc_key
            if not key or auth != "Basic " + key:
                return self.mi_error(role, 401, "unauthorized",
                                     "the key does not match")
        tok, exp_in = st.issue(resource.rstrip("/"))
        st.count(role + "_tokens")
        st.log({"role": role, "status": 200})
        now = int(time.time())
        if role == "appservice":
            body = {"access_token": tok, "expires_on": str(now + exp_in),
                    "resource": resource, "token_type": "Bearer",
                    "client_id": "00000000-0000-0000-0000-00000000a55e"}
        else:
            body = {"access_token": tok, "client_id":
                    "00000000-0000-0000-0000-0000000001d5",
                    "expires_in": str(exp_in), "expires_on": str(now + exp_in),
                    "ext_expires_in": str(exp_in), "not_before": str(now),
                    "resource": resource, "token_type": "Bearer"}
        self.reply(200, body)

    def mi_error(self, role, status, code, desc):
        if role == "appservice":
            body = {"statusCode": status, "message": desc,
                    "correlationId": secrets.token_hex(8)}
        else:
            body = {"error": code, "error_description": desc}
        self.reply(status, body)

    # ---- Logs Ingestion -------------------------------------------------

    def ingest_error(self, status, code, message):
        self.reply(status, {"error": {"code": code, "message": message}},
                   {"x-ms-error-code": code})

    def ingest(self, dcr, stream, query, body):
        st = self.server.state
        st.count("ingest_requests")
        rid = self.headers.get("x-ms-client-request-id")
        entry = {"role": "ingest", "request_id": rid, "bytes": len(body),
                 "received": round(time.time(), 3)}
        with st.lock:
            st.concurrent += 1
            if st.concurrent > st.stats.get("ingest_max_concurrent", 0):
                st.stats["ingest_max_concurrent"] = st.concurrent
        try:
            self.ingest_checked(dcr, stream, query, body, entry)
        finally:
            with st.lock:
                st.concurrent -= 1
            entry["status"] = self.last_status
            st.log(entry)

    def ingest_checked(self, dcr, stream, query, body, entry):
        st = self.server.state
        if self.apply_fault("ingest"):
            entry["fault"] = True
            return
        q = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        if q.get("api-version") != "2023-01-01":
            return self.ingest_error(400, "InvalidApiVersion",
                                     "The api-version is not supported.")
        auth = self.headers.get("Authorization", "")
        tok = auth[7:] if auth.startswith("Bearer ") else None
        with st.lock:
            info = st.tokens.get(tok)
        if not info or info[1] <= time.time() or \
                info[0] != MONITOR_RESOURCE.rstrip("/"):
            return self.ingest_error(401, "InvalidToken",
                                     "The provided token is missing, "
                                     "expired or not for the monitor "
                                     "audience.")
        rid = self.headers.get("x-ms-client-request-id")
        if not rid or not re.fullmatch(
                r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                r"[0-9a-f]{12}", rid):
            return self.ingest_error(400, "InvalidClientRequestId",
                                     "x-ms-client-request-id is not a UUID.")
        with st.lock:
            dup = rid in st.request_ids
            st.request_ids.add(rid)
        if dup:
            return self.ingest_error(400, "DuplicateClientRequestId",
                                     "x-ms-client-request-id was used "
                                     "before.")
        if dcr != st.args.dcr or stream != st.args.stream:
            return self.ingest_error(404, "NotFound",
                                     "Data collection rule with immutable "
                                     "Id '%s' or stream '%s' not found." %
                                     (dcr, stream))
        if st.config.get("forbid"):
            return self.ingest_error(403, "OperationFailed",
                                     "The authentication token provided "
                                     "does not have access to ingest data "
                                     "for the data collection rule with "
                                     "immutable Id '%s'." % dcr)
        ctype = self.headers.get("Content-Type", "")
        if ctype.split(";")[0].strip().lower() != "application/json":
            return self.ingest_error(415, "UnsupportedMediaType",
                                     "Content-Type must be "
                                     "application/json.")
        if len(body) > LIMIT:
            return self.ingest_error(
                413, "ContentLengthLimitExceeded",
                "Maximum allowed content length: 1048576 bytes (1 MB). "
                "Provided content length: %d bytes." % len(body))
        enc = self.headers.get("Content-Encoding")
        if enc is not None and enc != "gzip":
            return self.ingest_error(415, "UnsupportedContentEncoding",
                                     "Content-Encoding must be gzip.")
        if enc is None and st.args.require_gzip:
            return self.ingest_error(400, "GzipRequired",
                                     "This fake requires Content-Encoding: "
                                     "gzip.")
        if enc == "gzip":
            try:
                d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                raw = d.decompress(body, LIMIT + 1)
                if len(raw) > LIMIT:
                    return self.ingest_error(
                        413, "ContentLengthLimitExceeded",
                        "Maximum allowed content length: 1048576 bytes (1 "
                        "MB). Provided content length: %d bytes." %
                        (len(raw) + len(d.unconsumed_tail)))
                if not d.eof or d.unused_data:
                    raise zlib.error("not one complete gzip member")
            except zlib.error as e:
                return self.ingest_error(400, "InvalidContentEncoding",
                                         "The body is not valid gzip: %s" % e)
            entry["raw_bytes"] = len(raw)
        else:
            raw = body
        try:
            records = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            return self.ingest_error(400, "InvalidJson",
                                     "The body is not valid UTF-8 JSON: %s" % e)
        err = self.check_records(records)
        if err:
            return self.ingest_error(400, err[0], err[1])
        entry["records"] = len(records)
        now = time.time()
        with st.lock:
            with open(st.args.records, "a") as f:
                for r in records:
                    t = parse_time(r["TimeGenerated"])
                    if t < now - 48 * 3600 or t > now + 24 * 3600:
                        # Azure drops or rewrites such rows: count them.
                        st.stats["dropped_out_of_window"] = \
                            st.stats.get("dropped_out_of_window", 0) + 1
                    f.write(json.dumps(r, separators=(",", ":")) + "\n")
            st.stats["records"] = st.stats.get("records", 0) + len(records)
        self.reply(204)

    def check_records(self, records):
        if not isinstance(records, list) or not records:
            return ("InvalidJson", "The body must be a non-empty JSON array.")
        times = []
        for i, r in enumerate(records):
            if not isinstance(r, dict):
                return ("InvalidJson", "Item %d is not an object." % i)
            for k, v in r.items():
                t = COLUMNS.get(k)
                if t is None:
                    return ("InvalidColumn", "Item %d has column '%s', which "
                            "the stream does not declare." % (i, k))
                if v is None:
                    continue
                if t == "int" and (not isinstance(v, int) or
                                   isinstance(v, bool)):
                    return ("InvalidColumnType", "Item %d column %s is not "
                            "an integer." % (i, k))
                if t in ("string", "datetime") and not isinstance(v, str):
                    return ("InvalidColumnType", "Item %d column %s is not a "
                            "string." % (i, k))
            tg = r.get("TimeGenerated")
            ts = parse_time(tg) if isinstance(tg, str) else None
            if ts is None:
                return ("InvalidTimeGenerated", "Item %d has no valid RFC "
                        "3339 TimeGenerated." % i)
            times.append(ts)
            tid = r.get("task_id")
            if isinstance(tid, str) and tid.startswith("poison"):
                return ("InvalidRecord", "Record with task_id '%s' was "
                        "rejected." % tid)
        if max(times) - min(times) > 30 * 60:
            return ("RecordsTimeRangeIsMoreThan30Minutes",
                    "The TimeGenerated values of the records in one request "
                    "span more than 30 minutes.")
        return None


class Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port-file", required=True)
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--tenant", default="tenant-1")
    p.add_argument("--client", action="append",
                   help="CLIENT_ID:secret:VALUE, CLIENT_ID:cert:PEM or "
                        "CLIENT_ID:federated:FILE")
    p.add_argument("--scope", action="append",
                   help="accepted scopes (default: the monitor scope)")
    p.add_argument("--resource", action="append",
                   help="accepted managed identity resources")
    p.add_argument("--expires-in", type=int, default=3599)
    p.add_argument("--token-prefix", default="fake.",
                   help="start of every access token issued (random after "
                        "it), so a test can search its output for tokens")
    p.add_argument("--identity-header", default="app-service-header-secret")
    p.add_argument("--imds-user", default=None)
    p.add_argument("--arc-key-dir", default=None)
    p.add_argument("--dcr", default="dcr-00000000000000000000000000000000")
    p.add_argument("--stream", default="Custom-SpectraDetectLogs_CL")
    p.add_argument("--records", default=os.devnull)
    p.add_argument("--log", default=None)
    p.add_argument("--require-gzip", action="store_true")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args()
    args.scope = args.scope or ["https://monitor.azure.com//.default",
                                "https://monitor.azure.com/.default"]
    args.resource = args.resource or ["https://monitor.azure.com/",
                                      "https://monitor.azure.com"]
    srv = Server(("127.0.0.1", 0), Handler)
    srv.state = State(args)
    if args.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(args.tls[0], args.tls[1])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    port = srv.server_address[1]
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.rename(tmp, args.port_file)
    print(port, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
