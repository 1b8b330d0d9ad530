#!/usr/bin/env python3
"""A webhook receiver for Spine (Standard Webhooks), with Python's standard library only.

    SPINE_WEBHOOK_SECRET=whsec_... python3 receiver.py 8000

It prints each event once, as a JSON line, and answers 204; a request whose
signature does not verify, or whose timestamp is more than 5 minutes off,
gets 401 and is not handled.
"""
import base64, hashlib, hmac, http.server, json, os, sys, time

SECRET = base64.b64decode(os.environ["SPINE_WEBHOOK_SECRET"].removeprefix("whsec_"))
TOLERANCE = 5 * 60  # seconds: refuse replays of old messages
seen = set()        # webhook-id of the messages handled: a retry repeats one


def verified(headers, body):
    msg_id, ts = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    if not msg_id or not ts.isdigit() or abs(time.time() - int(ts)) > TOLERANCE:
        return False
    mac = hmac.new(SECRET, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(mac).decode()
    return any(hmac.compare_digest(expected, sig) for sig in headers.get("webhook-signature", "").split())


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if not verified(self.headers, body):
            self.send_response(401)
        else:
            if self.headers["webhook-id"] not in seen:
                seen.add(self.headers["webhook-id"])
                print(json.dumps(json.loads(body)), flush=True)  # handle the event here
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0), Receiver)
print(f"listening on 127.0.0.1:{server.server_address[1]}", file=sys.stderr, flush=True)
server.serve_forever()
