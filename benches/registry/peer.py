"""The peer of `just bench-registry`: what the seed's registry would be without installing
anything — Python's ThreadingHTTPServer with sqlite3 doing the same work per request as
`vds-proxy serve` (bearer token by SHA-256, a SQLite read or write, JSON out)."""
import hashlib
import json
import socketserver
import sqlite3
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, DB, DIGEST = int(sys.argv[1]), sys.argv[2], sys.argv[3]
local = threading.local()


def db():
    if not hasattr(local, "conn"):
        local.conn = sqlite3.connect(DB, isolation_level=None)
        local.conn.execute("PRAGMA journal_mode=WAL")
        local.conn.execute("PRAGMA synchronous=NORMAL")
        local.conn.execute("PRAGMA busy_timeout=5000")
    return local.conn


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def reply(self, code, body):
        data = (json.dumps(body) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def authorized(self):
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if hashlib.sha256(token.encode()).hexdigest() != DIGEST:
            self.reply(401, {"error": "unauthorized"})
            return False
        return True

    def do_GET(self):
        if not self.authorized():
            return
        rows = db().execute("SELECT ip, name, metadata, last_seen_ms, heartbeats FROM farms ORDER BY ip").fetchall()
        farms = [{"ip": r[0], "name": r[1], "metadata": json.loads(r[2]), "last_seen": r[3] // 1000,
                  "heartbeats": r[4]} for r in rows]
        self.reply(200, {"farms": farms})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        if not self.authorized():
            return
        ip = self.path.split("/")[3]
        now = int(time.time() * 1000)
        db().execute("UPDATE farms SET last_seen_ms = ?, heartbeats = heartbeats + 1 WHERE ip = ?", (now, ip))
        row = db().execute("SELECT ip, name, heartbeats FROM farms WHERE ip = ?", (ip,)).fetchone()
        self.reply(200, {"ip": row[0], "name": row[1], "heartbeats": row[2], "state": "online"})


conn = sqlite3.connect(DB)
conn.execute("CREATE TABLE IF NOT EXISTS farms (ip TEXT PRIMARY KEY, name TEXT, metadata TEXT, last_seen_ms INTEGER, heartbeats INTEGER)")
for i in range(1, 51):
    conn.execute("INSERT OR REPLACE INTO farms VALUES (?, ?, ?, 0, 0)", (f"100.64.1.{i}", f"farm-{i}", json.dumps({"gpus": i % 4})))
conn.commit()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def server_bind(self):
        # HTTPServer's own looks the host name up in DNS, which test hosts do not have.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "peer", PORT


Server(("0.0.0.0", PORT), Handler).serve_forever()
