#!/usr/bin/python3
"""A STAMP reflector written with Scapy the plain way: sniff, build the reply, sendp per packet.
The slow baseline of bench/stamp_pps.sh. Usage: scapy_reflector.py IFNAME"""
import sys

from scapy.all import IPv6, UDP, Ether, Raw, sendp, sniff

IFNAME = sys.argv[1]


def reflect(p):
    if UDP in p and p[UDP].dport == 862:
        sendp(Ether(src=p.dst, dst=p.src) / IPv6(src=p[IPv6].dst, dst=p[IPv6].src, hlim=64)
              / UDP(sport=862, dport=p[UDP].sport) / Raw(bytes(p[UDP].payload)),
              iface=IFNAME, verbose=False)


print("ready", flush=True)
sniff(iface=IFNAME, prn=reflect, store=False)
