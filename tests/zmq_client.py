#!/usr/bin/python3
"""An independent ZeroMQ client for rmad's tests (Debian's python3-zmq).

Run with /usr/bin/python3 from the repository root. Every wait is bounded
(ZMQ_CLIENT_TIMEOUT_MS, default 10000); a wait that runs out prints TIMEOUT and
exits 3, so the C test fails instead of hanging. Output is one line per message:
the frames, as text, joined by one space.

  sub ENDPOINT COUNT
      SUB to every topic; print the first COUNT messages.
  replay ENDPOINT FROM [dealer|req]
      Send {"replay_from": FROM}; print every message up to replay.end or error.
  raw ENDPOINT dealer|req replay|control REQUEST...
      Send each REQUEST (a JSON array of frames: a string, {"repeat": S, "n": N},
      {"hex": "..."}, or a list of these, concatenated) and print the answer: for replay every message up to
      replay.end or error, for control the one reply. Then wait QUIET_MS (300) and
      print EXTRA for anything else that arrives.
"""
import json
import os
import sys

import zmq

TIMEOUT_MS = int(os.environ.get("ZMQ_CLIENT_TIMEOUT_MS", "10000"))
QUIET_MS = 300


def text(frames):
    return " ".join(f.decode("utf-8", "replace") for f in frames)


def recv(sock, timeout_ms=TIMEOUT_MS):
    if not sock.poll(timeout_ms, zmq.POLLIN):
        return None
    return sock.recv_multipart()


def must_recv(sock):
    frames = recv(sock)
    if frames is None:
        print("TIMEOUT", flush=True)
        sys.exit(3)
    return frames


def frame_bytes(spec):
    if isinstance(spec, list):
        return b"".join(frame_bytes(part) for part in spec)
    if isinstance(spec, str):
        return spec.encode("utf-8")
    if "repeat" in spec:
        return (spec["repeat"] * spec["n"]).encode("utf-8")
    return bytes.fromhex(spec["hex"])


def socket(ctx, kind, endpoint):
    s = ctx.socket({"dealer": zmq.DEALER, "req": zmq.REQ, "sub": zmq.SUB}[kind])
    s.setsockopt(zmq.LINGER, 0)
    s.connect(endpoint)
    return s


def until_end(sock, out):
    """Print replay messages up to replay.end or error (inclusive)."""
    while True:
        frames = must_recv(sock)
        out.append(text(frames))
        if len(frames) != 2 or frames[0] in (b"replay.end", b"error"):
            return


def main(argv):
    ctx = zmq.Context()
    out = []
    mode = argv[1]
    if mode == "sub":
        s = socket(ctx, "sub", argv[2])
        s.setsockopt(zmq.SUBSCRIBE, b"")
        for _ in range(int(argv[3])):
            frames = must_recv(s)
            out.append(("BADFRAMES %d " % len(frames) if len(frames) != 2 else "") + text(frames))
    elif mode == "replay":
        kind = argv[4] if len(argv) > 4 else "dealer"
        s = socket(ctx, kind, argv[2])
        s.send(json.dumps({"replay_from": int(argv[3])}).encode())
        if kind == "req":
            out.append(text(must_recv(s)))   # REQ takes a single reply
        else:
            until_end(s, out)
    elif mode == "raw":
        s = socket(ctx, argv[3], argv[2])
        for req in argv[5:]:
            s.send_multipart([frame_bytes(f) for f in json.loads(req)])
            if argv[4] == "replay" and argv[3] == "dealer":
                until_end(s, out)
            else:
                out.append(text(must_recv(s)))
        if argv[3] == "dealer":
            extra = recv(s, QUIET_MS)
            if extra is not None:
                out.append("EXTRA " + text(extra))
    else:
        print("unknown mode " + mode, file=sys.stderr)
        return 2
    for line in out:
        print(line)
    sys.stdout.flush()
    ctx.destroy(linger=0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
