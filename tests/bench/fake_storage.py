#!/usr/bin/python3
"""fake_storage.py: a minimal Blob service for the benchmark's blob-count runs.

e2e.sh measures how the daemon's cost grows with the number of blobs in a
container (1,000 / 10,000 / 100,000). Azurite takes about 4 ms of its own
CPU per Put Blob, so filling it with 100,000 blobs would take longer than
the whole benchmark may; and Azurite stamps every blob with its upload
time, so it cannot hold a container that accumulated over hours, which is
what the checkpoint's grace window is about. This server serves a
directory as a container instead, answering exactly the two calls the
daemon makes:

  GET /{account}/{container}?restype=container&comp=list&prefix=&marker=
      &maxresults=  List Blobs, paged (an opaque marker: the next name), in
      the XML layout Azurite and Azure use (Name, Properties with
      Last-Modified, Etag, Content-Length, Metadata).
  GET /{account}/{container}/{name}  Get Blob, with If-Match (412 when the
      ETag differs), ETag and Last-Modified headers.

Requests are not authenticated (the daemon signs them anyway). The blobs
are the files under --dir, named by their relative paths, in name order;
blob i of n gets Last-Modified now - (n - i) * --step seconds, as if an
appliance had written one report every --step seconds, and an ETag derived
from its name and size. Files are read at each Get Blob.

Start: fake_storage.py --dir DIR --port-file F [--account devstoreaccount1]
[--container small] [--step 0.1]; it listens on 127.0.0.1 port 0 and
writes the port to F once it accepts connections.
"""

import argparse
import bisect
import email.utils
import hashlib
import os
import socket
import socketserver
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer
from xml.sax.saxutils import escape


class Container:
    def __init__(self, root, step):
        names = []
        for d, _, files in os.walk(root):
            for f in files:
                names.append(os.path.relpath(os.path.join(d, f), root)
                             .replace(os.sep, "/"))
        names.sort()
        now = int(time.time())
        n = len(names)
        self.root = root
        self.names = names
        self.meta = {}
        for i, name in enumerate(names):
            size = os.path.getsize(os.path.join(root, name))
            lm = now - int((n - i) * step)
            tag = hashlib.sha1(("%s:%d" % (name, size)).encode()).hexdigest()
            self.meta[name] = (size, lm, "0x" + tag[:15].upper())


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-storage/1.0"
    # Buffered, so that headers and body leave in one send (flushed after
    # each request): written separately, Nagle's algorithm and the client's
    # delayed ACK would hold every response for 40 ms.
    wbufsize = -1

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *a):
        pass

    def reply(self, status, body=b"", headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-ms-version", "2023-11-03")
        self.end_headers()
        if body:
            self.wfile.write(body)

    def error(self, status, code, msg):
        body = ('<?xml version="1.0" encoding="utf-8"?><Error><Code>%s'
                '</Code><Message>%s</Message></Error>' % (code, msg)).encode()
        self.reply(status, body, {"Content-Type": "application/xml",
                                  "x-ms-error-code": code})

    def do_GET(self):
        c = self.server.container
        url = urllib.parse.urlsplit(self.path)
        parts = url.path.split("/", 3)
        # "", account, container[, name]
        if len(parts) < 3 or parts[1] != self.server.account or \
           parts[2] != self.server.container_name:
            return self.error(404, "ContainerNotFound", "no such container")
        q = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        if len(parts) == 3 or parts[3] == "":
            if q.get("comp") != "list":
                return self.error(400, "InvalidQueryParameterValue", "comp")
            return self.list(c, q)
        name = urllib.parse.unquote(parts[3])
        m = c.meta.get(name)
        if not m:
            return self.error(404, "BlobNotFound", "no such blob")
        size, lm, etag = m
        want = self.headers.get("If-Match")
        if want and want.strip('"') != etag:
            return self.error(412, "ConditionNotMet", "ETag mismatch")
        with open(os.path.join(c.root, name), "rb") as f:
            data = f.read()
        self.reply(200, data, {
            "Content-Type": "application/json",
            "ETag": '"%s"' % etag,
            "Last-Modified": email.utils.formatdate(lm, usegmt=True),
            "x-ms-blob-type": "BlockBlob"})

    def list(self, c, q):
        prefix = q.get("prefix", "")
        marker = q.get("marker", "")
        try:
            maxr = max(1, min(5000, int(q.get("maxresults") or 5000)))
        except ValueError:
            return self.error(400, "InvalidQueryParameterValue", "maxresults")
        i = bisect.bisect_left(c.names, marker or prefix)
        out = []
        nxt = ""
        while i < len(c.names):
            name = c.names[i]
            if not name.startswith(prefix):
                if name > prefix:
                    break
                i += 1
                continue
            if len(out) == maxr:
                nxt = name
                break
            size, lm, etag = c.meta[name]
            t = email.utils.formatdate(lm, usegmt=True)
            out.append(
                "<Blob><Name>%s</Name><Properties><Creation-Time>%s"
                "</Creation-Time><Last-Modified>%s</Last-Modified>"
                "<Etag>%s</Etag><Content-Length>%d</Content-Length>"
                "<Content-Type>application/json</Content-Type>"
                "<BlobType>BlockBlob</BlobType></Properties><Metadata/>"
                "</Blob>" % (escape(name), t, t, etag, size))
            i += 1
        body = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                '<EnumerationResults ServiceEndpoint="http://127.0.0.1/%s" '
                'ContainerName="%s"><Prefix>%s</Prefix><Marker>%s</Marker>'
                '<MaxResults>%d</MaxResults><Blobs>%s</Blobs><NextMarker>%s'
                '</NextMarker></EnumerationResults>' % (
                    self.server.account, self.server.container_name,
                    escape(prefix), escape(marker), maxr, "".join(out),
                    escape(nxt))).encode()
        self.reply(200, body, {"Content-Type": "application/xml"})


class Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--account", default="devstoreaccount1")
    ap.add_argument("--container", default="small")
    ap.add_argument("--step", type=float, default=0.1)
    args = ap.parse_args()
    srv = Server(("127.0.0.1", 0), Handler)
    srv.container = Container(args.dir, args.step)
    srv.account = args.account
    srv.container_name = args.container
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, args.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
