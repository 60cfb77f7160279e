#!/usr/bin/python3
"""A STAMP peer built on Scapy's STAMP layer (scapy.contrib.stamp), to check SegWAN against an
implementation it did not write. Packets are built and dissected by Scapy; one UDP socket
carries them (Scapy's sendp would open a socket per packet).

  stamp_scapy_peer.py send SRC DST PORT COUNT SSID   -> JSON summary, exit 1 on a mismatch
  stamp_scapy_peer.py reflect ADDR PORT COUNT        -> reflects COUNT packets, then exits
  stamp_scapy_peer.py tlvs SRC DST PORT SSID         -> every RFC 8972 / RFC 9503 TLV type
      (and an unknown one, a malformed one), each in its own test packet built with Scapy's
      generic STAMP TLV; the replies dissected by Scapy and checked against the RFCs. The
      reflector's session must be stateful (for Follow-Up Telemetry). JSON, exit 1 on a problem.
"""
import json
import socket
import sys
import time

import struct

from scapy.all import UDP, load_contrib, raw

load_contrib("stamp")
from scapy.contrib.stamp import (  # noqa: E402
    ErrorEstimate,
    STAMPSessionReflectorTestUnauthenticated as Reflected,
    STAMPSessionSenderTestUnauthenticated as Test,
    STAMPTestTLV as TLV,
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


U, M, I = 0x80, 0x40, 0x20  # RFC 8972 §4 TLV flags (Scapy's "UMIRRRRR", first bit first)


def tlv(kind, value, flags=U):
    """A sender's TLV: U set, as RFC 8972 §4 asks of a Session-Sender."""
    return TLV(flags=flags, type=kind, len=len(value), value=value)


def sub(kind, value):
    return struct.pack("!BBH", 0, kind, len(value)) + value


def tlvs(src, dst, port, ssid):
    """One packet per TLV type; returns the problems found in the replies."""
    a, b = socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVTCLASS, 1)
    s.bind((src, 0))
    s.settimeout(2.0)
    my_port = s.getsockname()[1]
    problems, checked = [], []
    raw_replies = {}
    seq = [0]

    def ask(name, objects):
        test = Test(seq=seq[0], ts=ntp_now(), ssid=ssid, tlv_objects=objects,
                    err_estimate=ErrorEstimate(S=0, Z=0, scale=0, multiplier=1))
        seq[0] += 1
        data = raw(test)
        s.sendto(data, (dst, port))
        try:
            reply, anc, _, _ = s.recvmsg(2048, socket.CMSG_SPACE(4))
        except socket.timeout:
            problems.append(f"{name}: no reply")
            return None, 0
        tclass = 0
        for level, kind, value in anc:
            if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_TCLASS:
                tclass = int.from_bytes(value[:4], sys.byteorder)
        if len(reply) != len(data):
            problems.append(f"{name}: reply of {len(reply)} bytes to a request of {len(data)}")
        # Scapy 2.5 sizes the TLV list from its parent's UDP length but does not set that
        # parent when it dissects a UDP payload: it is given one. Its TLV FlagsField names
        # the bits least significant first ("UMIRRRRR" shows U, 0x80, as the last R): flags
        # are compared as numbers here.
        r = Reflected(reply, _parent=UDP(len=8 + len(reply)))
        if r.seq_sender != test.seq or r.ssid != ssid:
            problems.append(f"{name}: reply to seq {r.seq_sender}, ssid {r.ssid}")
        checked.append(name)
        raw_replies[name] = reply
        return r, tclass

    def expect(name, cond, what):
        if not cond:
            problems.append(f"{name}: {what}")

    def one(name, t, flags):
        r, _ = ask(name, [t])
        if r is None:
            return None
        if len(r.tlv_objects) != 1:
            problems.append(f"{name}: {len(r.tlv_objects)} TLVs came back")
            return None
        got = r.tlv_objects[0]
        expect(name, got.type == t.type, f"type {got.type}")
        expect(name, int(got.flags) == flags, f"flags {int(got.flags):#04x}, expected {flags:#04x}")
        return got.value

    v = one("extra-padding", tlv(1, bytes(range(20))), 0)
    expect("extra-padding", v == bytes(range(20)), "not returned as sent")

    # Location (§4.2): the ports and the addresses the reflector saw.
    loc = struct.pack("!HH", 0, 0) + sub(4, bytes(16)) + sub(7, bytes(16))
    v = one("location", tlv(2, loc), 0)
    if v:
        dport, sport = struct.unpack("!HH", v[:4])
        expect("location", dport == port and sport == my_port, f"ports {dport}/{sport}, sent {my_port}->{port}")
        expect("location", v[5] == 6 and v[8:24] == b, "no Destination IPv6 sub-TLV with our destination")
        expect("location", v[25] == 9 and v[28:44] == a, "no Source IPv6 sub-TLV with our address")

    # Timestamp Information (§4.3): sync source and method of T2 and T3.
    v = one("timestamp-information", tlv(3, bytes(4)), 0)
    if v:
        expect("timestamp-information", v[0] in (1, 2, 5) and v[2] in (1, 2, 5), f"sync sources {v[0]}, {v[2]}")
        expect("timestamp-information", v[1] in (1, 2, 3) and v[3] in (1, 2, 3), f"methods {v[1]}, {v[3]}")

    # Class of Service (§4.4): DSCP1 46 asked; DSCP2/ECN as received (sent with 0); reply DSCP 46.
    r, tclass = ask("class-of-service", [tlv(4, struct.pack("!I", 46 << 26))])
    if r is not None and r.tlv_objects:
        got = r.tlv_objects[0]
        word = struct.unpack("!I", got.value[:4])[0]
        expect("class-of-service", int(got.flags) == 0, f"flags {int(got.flags):#04x}")
        expect("class-of-service", word >> 26 == 46, f"DSCP1 {word >> 26}")
        expect("class-of-service", (word >> 20) & 0x3f == 0 and (word >> 18) & 3 == 0, "DSCP2/ECN not as received")
        expect("class-of-service", tclass >> 2 == 46, f"reply sent with DSCP {tclass >> 2}, not DSCP1")
        checked.append("class-of-service: reply DSCP")

    # Direct Measurement (§4.5): S_TxC kept, R_RxC and R_TxC filled.
    v = one("direct-measurement", tlv(5, struct.pack("!III", 7, 0, 0)), 0)
    if v:
        stx, rrx, rtx = struct.unpack("!III", v)
        expect("direct-measurement", stx == 7 and rrx >= 1 and rtx >= 1, f"counters {stx}/{rrx}/{rtx}")

    # Access Report (§4.6): returned as received; an invalid Access ID is discarded (U).
    v = one("access-report", tlv(6, bytes([0x10, 1, 0, 0])), 0)
    expect("access-report", v == bytes([0x10, 1, 0, 0]), f"value {v!r}")
    one("access-report invalid id", tlv(6, bytes([0x30, 1, 0, 0])), U)

    # Follow-Up Telemetry (§4.7), stateful reflector: the second reply reports the first.
    r1, _ = ask("follow-up first", [tlv(7, bytes(16))])
    r2, _ = ask("follow-up", [tlv(7, bytes(16))])
    if r1 is not None and r2 is not None and r2.tlv_objects:
        got = r2.tlv_objects[0]
        fseq, fts = struct.unpack("!IQ", got.value[:12])
        expect("follow-up", int(got.flags) == 0, f"flags {int(got.flags):#04x}")
        expect("follow-up", fseq == r1.seq, f"sequence {fseq}, the previous reply's was {r1.seq}")
        t3 = struct.unpack("!Q", raw_replies["follow-up first"][4:12])[0]  # NTP, as asked
        expect("follow-up", fts != 0 and (fts - t3) / 2**32 < 0.1 and fts >= t3,
               f"timestamp {fts:#x} against the previous T3 {t3:#x}")
        expect("follow-up", got.value[12] in (1, 2, 3), f"timestamp mode {got.value[12]}")

    # HMAC (§4.8) in unauthenticated mode: no key to check it with: U.
    one("hmac", tlv(8, bytes(16)), U)

    # Destination Node Address (RFC 9503 §3): ours: U clear; another: U.
    one("destination-node-address", tlv(9, b), 0)
    one("destination-node-address other", tlv(9, socket.inet_pton(socket.AF_INET6, "2001:db8::1")), U)

    # Return Path (RFC 9503 §4): Control Code with Reply Request, Return Address = us.
    one("return-path", tlv(10, sub(1, struct.pack("!I", 1)) + sub(2, a)), 0)

    one("unknown type", tlv(200, b"\x01\x02\x03\x04"), U)

    # Malformed (§4): Class of Service of 2 bytes: M, and the reflector stops there.
    r, _ = ask("malformed", [tlv(4, b"\xb8\x00"), tlv(1, bytes(8))])
    if r is not None and r.tlv_objects:
        expect("malformed", int(r.tlv_objects[0].flags) & M, f"flags {int(r.tlv_objects[0].flags):#04x}")
        if len(r.tlv_objects) > 1:
            expect("malformed", r.tlv_objects[1].value == bytes(8), "the TLV after it was changed")

    print(json.dumps({"checked": checked, "problems": problems}))
    return 1 if problems else 0


if __name__ == "__main__":
    if sys.argv[1] == "tlvs":
        sys.exit(tlvs(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])))
    if sys.argv[1] == "send":
        sys.exit(send(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])))
    sys.exit(reflect(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
