"""An independent NATS client for the forwarding tests: the NATS text protocol spoken
over a plain socket (INFO/CONNECT/PING/PONG/SUB/PUB/HPUB/MSG/HMSG), and the JetStream
API as request/reply on $JS.API.* subjects. No libnats: what rmad publishes through
libnats is read back by code that shares nothing with it.
"""
import base64
import json
import socket
import time


class NatsError(Exception):
    pass


class Conn:
    def __init__(self, port, host="127.0.0.1", timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.sid = 0
        line = self._line()
        if not line.startswith(b"INFO "):
            raise NatsError("expected INFO, got %r" % line)
        self.info = json.loads(line[5:])
        self._send(b'CONNECT {"verbose":false,"pedantic":false,"headers":true,'
                   b'"no_responders":true,"protocol":1,"name":"rmad-test"}\r\nPING\r\n')
        while True:
            line = self._line()
            if line == b"PONG":
                break
            if line.startswith(b"-ERR"):
                raise NatsError(line.decode())
        self.inbox = "_INBOX.rmadtest.%d" % id(self)
        self.inbox_sid = self.subscribe(self.inbox + ".*")

    def _send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise NatsError("connection closed")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _bytes(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def subscribe(self, subject):
        self.sid += 1
        self._send(("SUB %s %d\r\n" % (subject, self.sid)).encode())
        return self.sid

    def publish(self, subject, payload, reply=None, headers=None):
        if headers:
            hdr = "NATS/1.0\r\n" + "".join("%s: %s\r\n" % kv for kv in headers.items()) + "\r\n"
            hdr = hdr.encode()
            self._send(("HPUB %s %s%d %d\r\n" % (subject, reply + " " if reply else "", len(hdr),
                                                 len(hdr) + len(payload))).encode()
                       + hdr + payload + b"\r\n")
        else:
            self._send(("PUB %s %s%d\r\n" % (subject, reply + " " if reply else "",
                                             len(payload))).encode() + payload + b"\r\n")

    def next_msg(self, timeout=10.0):
        """The next MSG/HMSG: (subject, reply, headers dict, payload bytes)."""
        self.sock.settimeout(timeout)
        while True:
            line = self._line()
            if line == b"PING":
                self._send(b"PONG\r\n")
                continue
            if line in (b"PONG", b"+OK"):
                continue
            if line.startswith(b"-ERR"):
                raise NatsError(line.decode())
            parts = line.split()
            if parts[0] == b"MSG":
                subj, reply = parts[1].decode(), parts[3].decode() if len(parts) == 5 else None
                data = self._bytes(int(parts[-1]))
                return subj, reply, {}, data
            if parts[0] == b"HMSG":
                subj, reply = parts[1].decode(), parts[3].decode() if len(parts) == 6 else None
                hlen, total = int(parts[-2]), int(parts[-1])
                raw = self._bytes(total)
                return subj, reply, parse_headers(raw[:hlen]), raw[hlen:]
            raise NatsError("unexpected %r" % line)

    def request(self, subject, payload=b"", timeout=10.0):
        self.sid += 1
        reply = "%s.%d" % (self.inbox, self.sid)
        self.publish(subject, payload, reply)
        deadline = time.time() + timeout
        while time.time() < deadline:
            subj, _, hdrs, data = self.next_msg(max(0.1, deadline - time.time()))
            if subj == reply:
                if hdrs.get(":status") == "503":
                    raise NatsError("no responders on " + subject)
                return hdrs, data
        raise NatsError("no reply to " + subject)

    def js(self, api, body=None):
        _, data = self.request("$JS.API." + api, json.dumps(body).encode() if body is not None else b"")
        return json.loads(data)

    def close(self):
        self.sock.close()


def parse_headers(raw):
    lines = raw.decode().split("\r\n")
    out = {}
    first = lines[0].split(None, 2)  # NATS/1.0 [status [description]]
    if len(first) > 1:
        out[":status"] = first[1]
    for l in lines[1:]:
        if ":" in l:
            k, v = l.split(":", 1)
            out[k.strip()] = v.strip()
    return out


def stream_messages(conn, stream):
    """Every message of the stream in stream order: dicts with subject, seq (stream),
    headers and data (bytes), read one by one with STREAM.MSG.GET."""
    info = conn.js("STREAM.INFO." + stream)
    if "error" in info:
        raise NatsError("stream info: %s" % info["error"])
    st = info["state"]
    out = []
    if st.get("messages", 0) == 0:
        return out, info
    for seq in range(st["first_seq"], st["last_seq"] + 1):
        r = conn.js("STREAM.MSG.GET." + stream, {"seq": seq})
        if "error" in r:
            if r["error"].get("err_code") == 10037:  # deleted: a gap in the stream
                continue
            raise NatsError("msg get %d: %s" % (seq, r["error"]))
        m = r["message"]
        hdrs = parse_headers(base64.b64decode(m["hdrs"])) if m.get("hdrs") else {}
        out.append({"subject": m["subject"], "seq": m["seq"], "headers": hdrs,
                    "data": base64.b64decode(m.get("data", ""))})
    return out, info
