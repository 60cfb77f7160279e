#!/usr/bin/python3
"""A STAMP peer built on Scapy's STAMP layer (scapy.contrib.stamp), to check SegWAN against an
implementation it did not write. Packets are built and dissected by Scapy; one UDP socket
carries them (Scapy's sendp would open a socket per packet).

  stamp_scapy_peer.py send SRC DST PORT COUNT SSID   -> JSON summary, exit 1 on a mismatch
  stamp_scapy_peer.py reflect ADDR PORT COUNT        -> reflects COUNT packets, then exits
"""
import json
import socket
import sys
import time

from scapy.all import load_contrib, raw

load_contrib("stamp")
from scapy.contrib.stamp import (  # noqa: E402
    ErrorEstimate,
    STAMPSessionReflectorTestUnauthenticated as Reflected,
    STAMPSessionSenderTestUnauthenticated as Test,
)

NTP_EPOCH = 2208988800
IPV6_RECVHOPLIMIT = 51
IPV6_HOPLIMIT = 52


def ntp_now():
    return time.time() + NTP_EPOCH


def send(src, dst, port, count, ssid):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.bind((src, 0))
    s.settimeout(2.0)
    problems, delays = [], []
    for i in range(count):
        test = Test(seq=i, ts=ntp_now(), ssid=ssid,
                    err_estimate=ErrorEstimate(S=0, Z=0, scale=0, multiplier=1))
        s.sendto(raw(test), (dst, port))
        try:
            data, _ = s.recvfrom(2048)
        except socket.timeout:
            problems.append(f"seq {i}: no reply")
            continue
        r = Reflected(data)
        if r.seq_sender != i:
            problems.append(f"seq {i}: reflector says sender seq {r.seq_sender}")
        if r.ssid != ssid:
            problems.append(f"seq {i}: ssid {r.ssid}")
        if r.getfieldval("ts_sender") != test.getfieldval("ts"):
            problems.append(f"seq {i}: sender timestamp not copied exactly")
        if not 1 <= r.ttl_sender <= 255:
            problems.append(f"seq {i}: ttl {r.ttl_sender}")
        t1, t2, t3 = float(test.ts), float(r.ts_rx), float(r.ts)
        if not (t1 <= t2 + 1e-3 and t2 <= t3 + 1e-6):
            problems.append(f"seq {i}: timestamps out of order {t1} {t2} {t3}")
        delays.append((t2 - t1) * 1e3)
    print(json.dumps({"sent": count, "problems": problems,
                      "mean_direct_ms": sum(delays) / len(delays) if delays else None}))
    return 1 if problems else 0


def reflect(addr, port, count):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1)
    s.bind((addr, port))
    s.settimeout(10.0)
    print("reflecting", flush=True)
    for _ in range(count):
        data, anc, _, peer = s.recvmsg(2048, socket.CMSG_SPACE(4))
        t2 = ntp_now()
        hop = 0
        for level, kind, value in anc:
            if level == socket.IPPROTO_IPV6 and kind == IPV6_HOPLIMIT:
                hop = int.from_bytes(value[:4], sys.byteorder)
        q = Test(data)
        r = Reflected(seq=q.seq, ts=ntp_now(), ssid=q.ssid, ts_rx=t2, seq_sender=q.seq,
                      ttl_sender=hop, err_estimate=ErrorEstimate(S=0, Z=0, scale=0, multiplier=1),
                      err_estimate_sender=q.err_estimate)
        r.fields["ts_sender"] = q.getfieldval("ts")  # copied as received, not via a float
        s.sendto(raw(r), peer)
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "send":
        sys.exit(send(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])))
    sys.exit(reflect(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
