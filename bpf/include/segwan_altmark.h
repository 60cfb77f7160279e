/* SegWAN alternate-marking ABI (RFC 9341, as SRv6-PM): what the loss-monitoring programs and
 * edge-manager share. Fixed-width fields; the C++ side static_asserts the sizes. */
#ifndef SEGWAN_ALTMARK_ABI_H
#define SEGWAN_ALTMARK_ABI_H

#include <linux/types.h>

#define ALTMARK_MAX_FLOWS 1024
#define ALTMARK_MAX_SEGS 16
/* Bits of the outer IPv6 Traffic Class: "monitored" and the colour. By default the two lowest
 * DSCP bits (ECN stays untouched); load-time constants of the programs. */
#define ALTMARK_DEFAULT_FLAG 0x08
#define ALTMARK_DEFAULT_COLOUR 0x04

/* A flow: the SID list of an H.Encaps route as it sits in the SRH (segments[0] = the last SID),
 * or the outer destination alone when the route carries no SRH. Unused entries are zero. */
struct altmark_flow_key {
	__u32 nsegs;
	__u8 segs[ALTMARK_MAX_SEGS][16];
};

/* What a monitored flow's counters are and, at the ingress edge, the colour to paint now. */
struct altmark_flow {
	__u32 slot;   /* counters at slot * 2 + colour */
	__u32 colour; /* 0 or 1; switched by edge-manager every period (ingress only) */
};

struct altmark_counter {
	__u64 packets;
	__u64 bytes;
};

/* An outer destination address: the quick filter in front of the flow table. */
struct altmark_addr {
	__u8 addr[16];
};

#endif
