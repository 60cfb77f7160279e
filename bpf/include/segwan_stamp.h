/* SegWAN STAMP data plane ABI: what BPF programs and edge-manager share. Fixed-width fields,
 * explicit padding; the C++ side static_asserts the sizes. */
#ifndef SEGWAN_STAMP_ABI_H
#define SEGWAN_STAMP_ABI_H

#include <linux/types.h>

#define STAMP_MAX_SESSIONS 4096
#define STAMP_MAX_LISTENERS 64
#define STAMP_MAX_SEGS 16          /* return path SIDs */
#define STAMP_BASE_LEN 44          /* unauthenticated test packet */

/* A local STAMP address and UDP port the reflector answers on. */
struct stamp_listener_key {
	__u8 addr[16];
	__u16 port; /* host order */
	__u16 pad;
};

/* The unauthenticated base packets (RFC 8762 §4.2.1 and §4.3.1, with the RFC 8972 SSID), as the
 * BPF programs address them: STAMP_OFF() into these, not literal offsets. Every field is in
 * network order on the wire. */
struct stamp_test_pkt {
	__u32 seq;
	__u64 timestamp; /* T1 */
	__u16 error_estimate;
	__u16 ssid;
	__u8 mbz[28];
} __attribute__((packed));
struct stamp_reply_pkt {
	__u32 seq;
	__u64 timestamp; /* T3 */
	__u16 error_estimate;
	__u16 ssid;
	__u64 rx_timestamp; /* T2 */
	__u32 sender_seq;
	__u64 sender_timestamp;
	__u16 sender_error_estimate;
	__u16 mbz1;
	__u8 sender_ttl;
	__u8 mbz2[3];
} __attribute__((packed));
#define STAMP_OFF(type, field) __builtin_offsetof(struct type, field)
#ifdef __cplusplus
static_assert(sizeof(stamp_test_pkt) == STAMP_BASE_LEN && sizeof(stamp_reply_pkt) == STAMP_BASE_LEN,
	      "a base STAMP packet is 44 bytes");
#else
_Static_assert(sizeof(struct stamp_test_pkt) == STAMP_BASE_LEN &&
		       sizeof(struct stamp_reply_pkt) == STAMP_BASE_LEN,
	       "a base STAMP packet is 44 bytes");
#endif

#define STAMP_F_STATEFUL (1u << 0)
#define STAMP_F_PTP (1u << 1)

/* Reflector sessions live in an array of STAMP_MAX_SESSIONS slots; a second array maps each
 * SSID (unique on a reflector) to its slot + 1 (0 = no session). Both lookups are array
 * lookups the verifier inlines. */
struct stamp_reflector_session {
	__u8 addr[16];        /* the listener address the session belongs to */
	__u16 port;           /* and its UDP port, host order */
	__u16 ssid;           /* host order */
	__u32 flags;
	__u32 next_seq;       /* stateful: the reflector's own sequence number */
	__u16 error_estimate; /* network order, written as is */
	__u8 nsegs;           /* return path SIDs in segs[], first to visit first */
	__u8 pad[1];
	__u8 segs[STAMP_MAX_SEGS][16];
	/* RFC 8972 §3: a session is its SSID with the addresses and ports. next_seq belongs to
	 * one sender, the session's owner: the first one either path (XDP or the user-space
	 * engine) answers. Others' packets go to user space, which keeps a sequence per sender. */
	__u32 owner[4];       /* the owner's address */
	__u16 owner_port;     /* and UDP port, network order */
	__u16 pad2;
	__u32 owner_state;    /* STAMP_OWNER_* */
};

#define STAMP_OWNER_NONE 0
#define STAMP_OWNER_CLAIMING 1 /* being written by one path: the others pass for now */
#define STAMP_OWNER_SET 2

/* Whether the sender at `addr` (16 bytes) and `port_be` owns `s`'s stateful counter, claiming
 * it first when nobody does. Shared by the XDP program and the agent (on the mmapped array):
 * one compare-and-swap decides a race between two first senders. */
static inline int stamp_owned_by(struct stamp_reflector_session *s, const void *addr, __u16 port_be)
{
	__u32 a[4];

	__builtin_memcpy(a, addr, 16);
	if (s->owner_state == STAMP_OWNER_NONE &&
	    __sync_val_compare_and_swap(&s->owner_state, STAMP_OWNER_NONE, STAMP_OWNER_CLAIMING) ==
		    STAMP_OWNER_NONE) {
		s->owner[0] = a[0];
		s->owner[1] = a[1];
		s->owner[2] = a[2];
		s->owner[3] = a[3];
		s->owner_port = port_be;
		__sync_fetch_and_add(&s->owner_state, 1); /* -> STAMP_OWNER_SET, a full barrier */
		return 1;
	}
	return s->owner_state == STAMP_OWNER_SET && s->owner_port == port_be && s->owner[0] == a[0] &&
	       s->owner[1] == a[1] && s->owner[2] == a[2] && s->owner[3] == a[3];
}

/* A sender session whose test packets get T1 at TC egress, indexed by SSID (unique on a
 * sender). Unauthenticated sessions only: the HMAC of an authenticated one covers T1. */
struct stamp_sender_session {
	__u32 flags;          /* STAMP_F_PTP */
	__u16 reflector_port; /* destination UDP port, host order */
	__u16 active;         /* 0: not stamped here */
};

/* A sender session whose reflected packets the XDP program collects, indexed by the sender
 * socket's UDP port (a reply comes back to the address and port the test packet left from). */
struct stamp_collector_session {
	__u8 addr[16];        /* the sender's source address */
	__u8 peer[16];        /* the reflector's address: replies come from it (RFC 8972 §3) */
	__u16 ssid;           /* host order */
	__u16 reflector_port; /* the reply's source port, host order (0: none; the port's bit in
	                       * stamp_collect_bits says whether the entry is in use) */
	__u8 pad[4];
	__u64 ring_full;      /* records lost for want of ring buffer room (atomic) */
};

/* One collected measurement, pushed to the ring buffer: timestamps as on the wire (NTP or PTP,
 * host order) except T4, TAI ns taken in XDP. The reflector's Error Estimate comes along: its
 * Z bit says which format T2 and T3 are in, whatever the sender uses. */
struct stamp_collect_record {
	__u64 t1, t2, t3;
	__u64 t4;
	__u32 sender_seq, reflector_seq;
	__u16 ssid;
	__u16 local_port;
	__u8 sender_ttl;
	__u8 pad;
	__u16 reflector_error_estimate; /* host order */
};

#define STAMP_RING_BYTES (256 * 1024)

/* Why the reflector let a packet to a STAMP port go, dropped it or sent it back; counted per
 * CPU. Traffic to other ports (including fragments, transit SRv6 and IPv4) is not counted. */
enum stamp_reason {
	STAMP_PASS_NOT_LISTENER = 0, /* a STAMP port, but not one of our addresses */
	STAMP_PASS_NO_SESSION,      /* to a listener, unknown SSID: left to user space */
	STAMP_PASS_TLVS,            /* carries TLVs: the user-space engine answers it */
	STAMP_PASS_NO_HEADROOM,     /* the return SRH needs more headroom than XDP has */
	STAMP_PASS_NO_ROUTE,        /* no route or neighbour for the reply yet: the stack resolves */
	STAMP_DROP_MALFORMED,       /* to a listener but too short or inconsistent */
	STAMP_ABORT_ADJUST,         /* the header could not be resized */
	STAMP_TX_REFLECTED,         /* sent back out of the interface it came in on */
	STAMP_REDIRECT_REFLECTED,   /* sent out of another interface, by the return path's route */
	STAMP_COLLECTED,            /* a sender session's reply: recorded in the ring buffer, consumed */
	STAMP_COLLECT_PASS,         /* to a collected port, but not the session's reply or with TLVs */
	STAMP_COLLECT_MALFORMED,    /* the session's reply, but short or with the wrong SSID */
	STAMP_COLLECT_RING_FULL,    /* the session's reply, but no ring buffer room: dropped, counted */
	STAMP_COLLECT_CSUM_PASS,    /* the UDP checksum does not add up: the stack decides (see below) */
	STAMP_DROP_ZERO_CSUM,       /* a test packet with UDP checksum 0, which IPv6 forbids */
	STAMP_PASS_CSUM,            /* a test packet whose checksum does not add up: the stack decides */
	STAMP_PASS_OTHER_SENDER,    /* a stateful session's packet from another sender than its owner */
	STAMP_REASON_MAX,
};

#endif
