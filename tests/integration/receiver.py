#!/usr/bin/env python3
"""A webhook receiver for the notification tests.

    receiver.py PORT LOG [FAIL_FIRST_N]

Answers every POST with 200 (the first FAIL_FIRST_N with 500) and appends one JSON
line per request to LOG: {"path", "headers", "body", "status", "arrived" (Unix s)}. Runs until killed.
"""
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

PORT, LOG = int(sys.argv[1]), sys.argv[2]
FAIL = int(sys.argv[3]) if len(sys.argv) > 3 else 0
seen = 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        global seen
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n).decode("utf-8", "replace")
        seen += 1
        status = 500 if seen <= FAIL else 200
        with open(LOG, "a") as f:
            f.write(json.dumps({"path": self.path, "headers": dict(self.headers),
                                "body": body, "status": status,
                                "arrived": time.time()}) + "\n")
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
