#!/usr/bin/env python3
"""Stand-ins for Infobip's and Vonage's SMS APIs over HTTPS, shaped as
their public documentation describes them, for tests/sms_providers.rs.

  provider_mock.py --cert srv.pem --key srv.key --log requests.jsonl

Prints "listening PORT" first. Every request is appended to the log as
one JSON line: method, path, query, headers (lower-case names), body.

Infobip: POST /sms/2/text/advanced answers messages[] (messageId: the one
the request chose, status PENDING_ACCEPTED); GET /sms/1/reports answers a
DELIVERED report for each accepted message not yet reported.
Vonage: POST /sms/json answers one messages[] entry per part (GSM 160/153,
UCS-2 70/67) with message-id and status "0".

A text containing a word changes the answer the first time it is seen:
"throttle" -> 429 (Infobip) / status "1" (Vonage); "boom" -> 503 / HTTP
500; always: "reject" -> 400 requestError (Infobip) / status "4" Invalid
Credentials (Vonage); "slow" -> the answer waits 2.5 s. A wrong key ->
401 (Infobip) / status "4" (Vonage).
"""

import argparse
import http.server
import json
import math
import ssl
import sys
import threading
import time
import urllib.parse

LOCK = threading.Lock()
SEEN = set()
ACCEPTED = []  # Infobip ids for the report pull
COUNTER = [0]


def first_time(key):
    with LOCK:
        if key in SEEN:
            return False
        SEEN.add(key)
        return True


def gsm_parts(text, unicode):
    n = len(text.encode("utf-16-be")) // 2 if unicode else len(text)
    single, per = (70, 67) if unicode else (160, 153)
    return 1 if n <= single else math.ceil(n / per)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    args = None

    def log_message(self, *a):
        pass

    def record(self, body):
        u = urllib.parse.urlsplit(self.path)
        entry = {
            "method": self.command,
            "path": u.path,
            "query": u.query,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("utf-8", "replace"),
            "at": time.time(),
        }
        with LOCK:
            with open(self.args.log, "a") as f:
                f.write(json.dumps(entry) + "\n")
        return u

    def answer(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        u = self.record(b"")
        if u.path == "/sms/1/reports":
            if self.headers.get("Authorization") != "App " + self.args.key:
                return self.answer(401, {"requestError": {"serviceException": {"messageId": "UNAUTHORIZED", "text": "Invalid login details"}}})
            with LOCK:
                ids = list(ACCEPTED)
                ACCEPTED.clear()
            results = [{
                "bulkId": "bulk-1", "messageId": i, "to": "41793026727",
                "sentAt": "2026-12-05T04:00:00.000+0000", "doneAt": "2026-12-05T04:00:01.000+0000",
                "smsCount": 1,
                "status": {"groupId": 3, "groupName": "DELIVERED", "id": 5, "name": "DELIVERED_TO_HANDSET", "description": "Message delivered to handset"},
                "error": {"groupId": 0, "groupName": "OK", "id": 0, "name": "NO_ERROR", "description": "No Error", "permanent": False},
            } for i in ids]
            return self.answer(200, {"results": results})
        self.answer(404, {})

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        u = self.record(body)
        if u.path == "/sms/2/text/advanced":
            return self.infobip(body)
        if u.path == "/sms/json":
            return self.vonage(body)
        self.answer(404, {})

    def infobip(self, body):
        if self.headers.get("Authorization") != "App " + self.args.key:
            return self.answer(401, {"requestError": {"serviceException": {"messageId": "UNAUTHORIZED", "text": "Invalid login details"}}})
        msgs = json.loads(body)["messages"]
        texts = " ".join(m.get("text", "") for m in msgs)
        if "slow" in texts:
            time.sleep(2.5)
        if "throttle" in texts and first_time(texts + "429"):
            return self.answer(429, {"requestError": {"serviceException": {"messageId": "TOO_MANY_REQUESTS", "text": "Too many requests"}}})
        if "boom" in texts and first_time(texts + "503"):
            return self.answer(503, {"requestError": {"serviceException": {"messageId": "GENERAL_ERROR", "text": "Something went wrong"}}})
        if "reject" in texts:
            return self.answer(400, {"requestError": {"serviceException": {"messageId": "BAD_REQUEST", "text": "Bad request: invalid destination address"}}})
        out = []
        for m in msgs:
            for d in m["destinations"]:
                mid = d.get("messageId") or "ib-%d" % next_id()
                with LOCK:
                    ACCEPTED.append(mid)
                out.append({"to": d["to"], "messageId": mid,
                            "status": {"groupId": 1, "groupName": "PENDING", "id": 26, "name": "PENDING_ACCEPTED", "description": "Message sent to next instance"}})
        self.answer(200, {"bulkId": "bulk-%d" % next_id(), "messages": out})

    def vonage(self, body):
        f = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
        text = f.get("text", "")
        if "slow" in text:
            time.sleep(2.5)
        if f.get("api_key") != self.args.key or f.get("api_secret") != self.args.secret:
            return self.answer(200, {"message-count": "1", "messages": [{"status": "4", "error-text": "Bad Credentials"}]})
        if "boom" in text and first_time(text + "500"):
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if "throttle" in text and first_time(text + "1"):
            return self.answer(200, {"message-count": "1", "messages": [{"status": "1", "error-text": "Throughput Rate Exceeded - please wait [ 500 ] and retry"}]})
        if "reject" in text:
            return self.answer(200, {"message-count": "1", "messages": [{"status": "4", "error-text": "Invalid Credentials"}]})
        parts = gsm_parts(text, f.get("type") == "unicode")
        out = [{"to": f.get("to"), "message-id": "0A%014X" % next_id(), "status": "0",
                "remaining-balance": "3.14159265", "message-price": "0.03330000", "network": "12345",
                "client-ref": f.get("client-ref", "")} for _ in range(parts)]
        self.answer(200, {"message-count": str(parts), "messages": out})


def next_id():
    with LOCK:
        COUNTER[0] += 1
        return COUNTER[0]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cert", required=True)
    p.add_argument("--key-file", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--key", default="k3y")
    p.add_argument("--secret", default="s3cr3t")
    args = p.parse_args()
    Handler.args = args
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key_file)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("listening %d" % srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
