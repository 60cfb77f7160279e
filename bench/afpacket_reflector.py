#!/usr/bin/env python3
"""A STAMP reflector in plain Python over AF_PACKET, with prebuilt bytes: the reply to the first
test packet is built once (MACs, addresses and ports swapped) and sent again for every test
packet after it. The baseline bench/stamp_pps.sh compares the user-space engine with.
Usage: afpacket_reflector.py IFNAME"""
import socket
import sys

SOL_PACKET, PACKET_IGNORE_OUTGOING, ETH_P_IPV6 = 263, 23, 0x86DD
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IPV6))
s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
s.bind((sys.argv[1], 0))
print("ready", flush=True)
reply = None
while True:
    f = s.recv(2048)
    # IPv6, next header UDP, destination port 862
    if len(f) < 106 or f[20] != 17 or f[56] != 0x03 or f[57] != 0x5E:
        continue
    if reply is None:
        # Swapping addresses and ports leaves the UDP checksum's sum as it was.
        reply = f[6:12] + f[0:6] + f[12:22] + f[38:54] + f[22:38] + f[56:58] + f[54:56] + f[58:]
    s.send(reply)
