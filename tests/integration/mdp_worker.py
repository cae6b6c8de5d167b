"""A standalone Majordomo (MDP/0.1) worker process for tests that kill handlers.

Usage: mdp_worker.py ENDPOINT SERVICE MODE [LOGFILE [CREDIT]]
MODE: echo (reply with the payload), hang (take requests, never answer).
Each received request is appended to LOGFILE as one line: the payload as hex.
With CREDIT, READY offers "credit=CREDIT" (docs/protocol.md section 3); without it the
worker is a plain MDP/0.1 worker.
"""
import sys
import time

import zmq


def main():
    endpoint, service, mode = sys.argv[1], sys.argv[2].encode(), sys.argv[3]
    log = open(sys.argv[4], "a", buffering=1) if len(sys.argv) > 4 else None
    s = zmq.Context.instance().socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(endpoint)
    ready = [b"", b"MDPW01", b"\x01", service]
    if len(sys.argv) > 5:
        ready.append(b"credit=" + sys.argv[5].encode())
    s.send_multipart(ready)
    next_hb = time.time() + 0.25
    while True:
        if s.poll(50):
            frames = s.recv_multipart()
            if len(frames) >= 6 and frames[2] == b"\x02":
                if log:
                    log.write(frames[5].hex() + "\n")
                if mode == "echo":
                    s.send_multipart([b"", b"MDPW01", b"\x03", frames[3], b"", frames[5]])
        if time.time() >= next_hb:
            s.send_multipart([b"", b"MDPW01", b"\x04"])
            next_hb = time.time() + 0.25


if __name__ == "__main__":
    main()
