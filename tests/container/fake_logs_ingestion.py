#!/usr/bin/env python3
"""A minimal Entra token endpoint plus Logs Ingestion API for the container
test: enough for the daemon to get a token and deliver records, nothing
scripted. It listens on 127.0.0.1 (port 0: any free port), prints
"listening on PORT" once ready, and appends every record it accepts, one
JSON object per line, to the file named by its first argument.

  POST /{tenant}/oauth2/v2.0/token           -> 200 {"access_token": ...}
  POST /dataCollectionRules/{dcr}/streams/{stream}?api-version=2023-01-01
       Bearer token required, gzip or plain JSON array      -> 204
Anything else is answered 404, a bad token 401, a bad body 400.
"""
import gzip
import http.server
import json
import re
import sys

TOKEN = "fake-logs-ingestion-token-0123456789"
INGEST = re.compile(r"^/dataCollectionRules/(dcr-[0-9a-f]+)/streams/"
                    r"(Custom-[A-Za-z0-9_]+)\?api-version=2023-01-01$")
MAX_BODY = 1048576


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    out = None

    def log_message(self, fmt, *args):
        sys.stderr.write("fake-ingest: " + (fmt % args) + "\n")

    def reply(self, status, body=b"", ctype="application/json"):
        self.send_response(status)
        if body:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def error(self, status, code, message):
        self.reply(status, json.dumps({"error": {"code": code,
                                                 "message": message}}).encode())

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            return self.error(413, "ContentLengthLimitExceeded",
                              "Maximum allowed content length: 1048576 bytes (1 MB).")
        body = self.rfile.read(n)
        if re.match(r"^/[^/]+/oauth2/v2\.0/token$", self.path):
            return self.reply(200, json.dumps({"token_type": "Bearer",
                                               "expires_in": 3599,
                                               "access_token": TOKEN}).encode())
        if not INGEST.match(self.path):
            return self.error(404, "NotFound", "no such DCR or stream: " + self.path)
        if self.headers.get("Authorization") != "Bearer " + TOKEN:
            return self.error(401, "InvalidToken", "bad or missing bearer token")
        try:
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if len(body) > MAX_BODY:
                return self.error(413, "ContentLengthLimitExceeded",
                                  "Maximum allowed content length: 1048576 bytes (1 MB).")
            records = json.loads(body)
            if not isinstance(records, list):
                raise ValueError("the body is not a JSON array")
        except (ValueError, OSError) as e:
            return self.error(400, "InvalidContent", str(e))
        with open(self.out, "a", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, separators=(",", ":")) + "\n")
        self.reply(204)


def main():
    Handler.out = sys.argv[1]
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print("listening on %d" % srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
