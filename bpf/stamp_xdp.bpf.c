// SPDX-License-Identifier: GPL-2.0
/* STAMP on XDP: the session-reflector and the session-sender's collector (RFC 8762, RFC 8972
 * SSID) in one program, because an interface takes one XDP program and an edge is often both.
 *
 * Reflector. A test packet to a local STAMP address and port (IPv6/UDP, with or without an SRH
 * whose Segments Left is 0) that belongs to a configured unauthenticated session is turned into
 * the reflector packet in place: T2 taken on arrival, the sender's fields copied, the sender TTL
 * set to the received hop limit, addresses and ports swapped, the SRH replaced by the session's
 * return path (the header grows or shrinks), T3 written last, the UDP checksum updated, and the
 * frame sent to the next hop of the reply's route: the kernel's FIB says which interface and
 * which MAC addresses; XDP_TX when that is the interface it came in on, a redirect otherwise.
 * Authenticated sessions, packets with TLVs and unknown SSIDs go to the stack, where the
 * user-space engine answers them.
 *
 * Collector. A reflector packet coming back to the address and port a sender session sends
 * from gets T4 on arrival; its checksum is verified, a record (SSID, both sequence numbers,
 * T1..T4, sender TTL) goes to a ring buffer and the packet is consumed. With TLVs it goes up to
 * the session's socket instead; without ring buffer room it is dropped and counted per session.
 *
 * Every verdict on a packet to a STAMP port is counted by reason; other traffic passes
 * uncounted, at the cost of two bit tests. T2 and T4 are taken once the UDP port says the
 * packet is STAMP: a few tens of nanoseconds after the first instruction, and unrelated
 * traffic never pays for the clock read.
 */
#include "lib/csum.h"
#include "lib/parsing.h"
#include "lib/stamp_time.h"
#include "segwan_stamp.h"

#define REPLY_HOP_LIMIT 64
#define AF_INET6 10 /* from linux/socket.h, which BPF programs cannot include */

/* local STAMP addresses and ports, written by edge-manager */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct stamp_listener_key);
	__type(value, __u32);
	__uint(max_entries, STAMP_MAX_LISTENERS);
} stamp_listeners SEC(".maps");

/* reflector sessions by slot, written by edge-manager, read (next_seq bumped) per packet;
 * mmapable, so that the user-space engine, answering what this program passes up, takes a
 * stateful session's sequence number from the same counter */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct stamp_reflector_session);
	__uint(max_entries, STAMP_MAX_SESSIONS);
} stamp_sessions SEC(".maps");

/* SSID -> session slot + 1 (0: none), written by edge-manager */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 65536);
} stamp_ssid_slots SEC(".maps");

/* Where a session's replies went last, per CPU and per session slot: a FIB lookup costs more
 * than the whole rest of the reflection, so its answer is kept for FIB_CACHE_NS and then asked
 * for again (a route or neighbour change takes effect within that time). */
#define FIB_CACHE_NS 100000000ULL
struct fib_cache {
	__u64 expires_ns;
	__u32 dst[4]; /* as bpf_fib_lookup.ipv6_dst */
	__u32 ifindex;
	__u8 smac[ETH_ALEN];
	__u8 dmac[ETH_ALEN];
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct fib_cache);
	__uint(max_entries, STAMP_MAX_SESSIONS);
} stamp_fib_cache SEC(".maps");

static __always_inline struct stamp_reflector_session *
find_session(__u32 ssid, const struct in6_addr *daddr, __u16 dport, __u32 *slot_out)
{
	struct stamp_reflector_session *s;
	__u32 *slot, idx;

	slot = bpf_map_lookup_elem(&stamp_ssid_slots, &ssid);
	if (!slot || *slot == 0)
		return NULL;
	idx = *slot - 1;
	*slot_out = idx;
	s = bpf_map_lookup_elem(&stamp_sessions, &idx);
	if (!s || s->port != dport || s->ssid != ssid)
		return NULL;
	if (*(__u64 *)&s->addr[0] != *(__u64 *)&daddr->s6_addr[0] ||
	    *(__u64 *)&s->addr[8] != *(__u64 *)&daddr->s6_addr[8])
		return NULL;
	return s;
}

/* UDP ports with a STAMP listener, and ports sender sessions send from, one bit each, written
 * by edge-manager: unrelated traffic is turned away by two loads and tests, before any helper
 * call. */
volatile __u64 stamp_port_bits[65536 / 64];
volatile __u64 stamp_collect_bits[65536 / 64];

/* sender sessions by their local UDP port, written by edge-manager */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct stamp_collector_session);
	__uint(max_entries, 65536);
} stamp_collectors SEC(".maps");

/* collected records, drained by edge-manager into per-session queues */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, STAMP_RING_BYTES);
} stamp_records SEC(".maps");

/* verdict counters by enum stamp_reason, read by edge-manager */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, STAMP_REASON_MAX);
} stamp_reasons SEC(".maps");

static __always_inline int count(__u32 reason, int verdict)
{
	__u64 *n = bpf_map_lookup_elem(&stamp_reasons, &reason);

	if (n)
		*n += 1;
	return verdict;
}

static __always_inline __u64 get_be64(const __u8 *p)
{
	__u64 v;

	__builtin_memcpy(&v, p, 8);
	return bpf_be64_to_cpu(v);
}

static __always_inline __u32 get_be32(const __u8 *p)
{
	__u32 v;

	__builtin_memcpy(&v, p, 4);
	return bpf_ntohl(v);
}

/* A packet to a port a sender session sends from: its reply is recorded and consumed. */
/* The UDP checksum of a base (44-byte, TLV-free) STAMP packet adds up: the pseudo-header (at
 * Segments Left 0 the destination is final), the UDP header and the payload, as 32-bit words
 * summed in 64 bits (a carry must not be lost), fold to zero. */
static __always_inline int base_csum_ok(struct ipv6hdr *ip6, struct udphdr *udp, __u8 *p)
{
	__u64 sum = (__u64)bpf_htonl((__u32)bpf_ntohs(udp->len)) + bpf_htonl(IPPROTO_UDP);

#pragma unroll
	for (int i = 0; i < 4; i++)
		sum += (__u64)ip6->saddr.s6_addr32[i] + ip6->daddr.s6_addr32[i];
	sum += (__u64) * (__u32 *)udp + *((__u32 *)udp + 1);
#pragma unroll
	for (int i = 0; i < STAMP_BASE_LEN / 4; i++) {
		__u32 w;

		__builtin_memcpy(&w, p + i * 4, 4);
		sum += w;
	}
	return csum_fold(sum) == 0;
}

#define R(field) STAMP_OFF(stamp_reply_pkt, field) /* a field of the reply collected */
/* The IPv6 Payload Length agrees with the frame: it covers the UDP datagram (ending at
 * `udp_end`) and does not run past the frame's end. The stack drops what does not (a payload
 * length past the frame is a truncated packet; one short of the datagram leaves UDP cut), so
 * XDP neither answers nor records it. */
static __always_inline int ip6_length_ok(struct ipv6hdr *ip6, void *udp_end, void *end)
{
	void *payload_end = (void *)(ip6 + 1) + ntohs_len(ip6->payload_len);

	return payload_end <= end && udp_end <= payload_end;
}

static __always_inline int collect(struct ipv6hdr *ip6, struct udphdr *udp, void *end, __u32 dport)
{
	__u64 t4 = bpf_ktime_get_tai_ns();
	struct stamp_collector_session *s;
	struct stamp_collect_record *r;
	__u8 *p = (void *)(udp + 1);
	__u16 udp_len = ntohs_len(udp->len), ssid;

	/* A session is its addresses and ports with its SSID (RFC 8972 §3): a reply from anywhere
	 * else, whatever it says, is not recorded here (the socket counts and drops it). */
	s = bpf_map_lookup_elem(&stamp_collectors, &dport);
	if (!s || bpf_ntohs(udp->source) != s->reflector_port ||
	    *(__u64 *)&s->addr[0] != *(__u64 *)&ip6->daddr.s6_addr[0] ||
	    *(__u64 *)&s->addr[8] != *(__u64 *)&ip6->daddr.s6_addr[8] ||
	    *(__u64 *)&s->peer[0] != *(__u64 *)&ip6->saddr.s6_addr[0] ||
	    *(__u64 *)&s->peer[8] != *(__u64 *)&ip6->saddr.s6_addr[8])
		return count(STAMP_COLLECT_PASS, XDP_PASS);
	/* From here the packet is to the session's own address and port, from its reflector. */
	if (udp_len < sizeof(*udp) + STAMP_BASE_LEN || (void *)udp + udp_len > end ||
	    (void *)(p + STAMP_BASE_LEN) > end || !ip6_length_ok(ip6, (void *)udp + udp_len, end))
		return count(STAMP_COLLECT_MALFORMED, XDP_DROP);
	if (udp_len != sizeof(*udp) + STAMP_BASE_LEN)
		return count(STAMP_COLLECT_PASS, XDP_PASS); /* TLVs: the socket parses them */
	ssid = ((__u16)p[R(ssid)] << 8) | p[R(ssid) + 1];
	if (ssid != s->ssid) {
		/* SSID 0: a reflector that knows no SSID (RFC 8762 only); the session's socket
		 * decides whether it takes such replies. Any other SSID is not this session's. */
		if (ssid == 0)
			return count(STAMP_COLLECT_PASS, XDP_PASS);
		return count(STAMP_COLLECT_MALFORMED, XDP_DROP);
	}

	/* The checksum over the pseudo-header (at Segments Left 0 the destination is final), the
	 * UDP header and the payload, as 32-bit words: it must fold to zero. When it does not, the
	 * stack decides: a reply sent from a local socket over a veth or virtio link may still
	 * carry a partial checksum (offloaded, never finished) that the stack knows to trust, and
	 * XDP cannot tell that from corruption. The session's socket then reads it. */
	if (udp->check == 0 || !base_csum_ok(ip6, udp, p))
		return count(STAMP_COLLECT_CSUM_PASS, XDP_PASS);

	r = bpf_ringbuf_reserve(&stamp_records, sizeof(*r), 0);
	if (!r) {
		__sync_fetch_and_add(&s->ring_full, 1);
		return count(STAMP_COLLECT_RING_FULL, XDP_DROP);
	}
	r->reflector_seq = get_be32(p + R(seq));
	r->t3 = get_be64(p + R(timestamp));
	r->ssid = s->ssid;
	r->local_port = dport;
	r->t2 = get_be64(p + R(rx_timestamp));
	r->sender_seq = get_be32(p + R(sender_seq));
	r->t1 = get_be64(p + R(sender_timestamp));
	r->sender_ttl = p[R(sender_ttl)];
	r->pad = 0;
	r->reflector_error_estimate = ((__u16)p[R(error_estimate)] << 8) | p[R(error_estimate) + 1];
	r->t4 = t4;
	bpf_ringbuf_submit(r, 0);
	return count(STAMP_COLLECTED, XDP_DROP);
}

/* ---- the reflector, step by step ---------------------------------------------------------- */

/* A received test packet: where its headers are, and what the reply needs of them once they
 * have moved (the payload stays where it is and becomes the reply in place). */
struct test_packet {
	struct ethhdr *eth;
	struct ipv6hdr *ip6;
	struct udphdr *udp;
	__u8 *payload;
	__u32 hdr_len; /* IPv6 header and SRH: what the reply's headers replace */
	__u16 dport, udp_len;
	/* kept before the headers move */
	struct in6_addr sender, local;
	__u32 vtc; /* version, traffic class, flow label */
	__u16 sport;
	__u8 hop_limit;
};

/* Parse: Ethernet, IPv6, an SRH whose Segments Left is 0 (the packet is for this node), UDP.
 * Returns 0, or -1 for everything else (transit SRv6 traffic included): it passes. */
static __always_inline int parse_test_packet(struct cursor *c, struct test_packet *t)
{
	struct ipv6_sr_hdr *srh;
	int nh;

	if (parse_eth(c, &t->eth) != ETH_P_IPV6)
		return -1;
	nh = parse_ipv6(c, &t->ip6);
	t->hdr_len = sizeof(*t->ip6);
	if (nh == IPPROTO_ROUTING_HDR) {
		nh = parse_srh(c, &srh);
		if (nh < 0 || srh->segments_left != 0)
			return -1;
		t->hdr_len += ((__u32)srh->hdrlen + 1) * 8;
	}
	if (nh != IPPROTO_UDP || parse_udp(c, &t->udp) < 0)
		return -1;
	t->dport = bpf_ntohs(t->udp->dest);
	t->udp_len = ntohs_len(t->udp->len);
	t->payload = c->pos;
	return 0;
}

static __always_inline int port_bit(volatile __u64 *bits, __u16 port)
{
	return (bits[(port >> 6) & 1023] & (1ULL << (port & 63))) != 0;
}

/* Session lookup: the session of the packet's SSID at its address and port. Returns -1 with
 * the session, else the verdict on a packet that is not (or not all) ours to reflect. */
static __always_inline int lookup_session(struct test_packet *t, void *end,
					  struct stamp_reflector_session **s, __u32 *slot)
{
	struct stamp_listener_key lkey = {};
	__u8 *ssid = t->payload + STAMP_OFF(stamp_test_pkt, ssid);
	int short_packet = t->udp_len < sizeof(*t->udp) + STAMP_BASE_LEN ||
			   (void *)t->udp + t->udp_len > end || (void *)(t->payload + STAMP_BASE_LEN) > end ||
			   !ip6_length_ok(t->ip6, (void *)t->udp + t->udp_len, end);

	if (!short_packet) {
		*s = find_session(((__u32)ssid[0] << 8) | ssid[1], &t->ip6->daddr, t->dport, slot);
		if (*s)
			return -1;
	}
	/* Not a session's: malformed or unknown STAMP if it is to one of our listeners, else
	 * somebody else's. */
	__builtin_memcpy(lkey.addr, &t->ip6->daddr, 16);
	lkey.port = t->dport;
	if (!bpf_map_lookup_elem(&stamp_listeners, &lkey))
		return count(STAMP_PASS_NOT_LISTENER, XDP_PASS);
	return short_packet ? count(STAMP_DROP_MALFORMED, XDP_DROP) : count(STAMP_PASS_NO_SESSION, XDP_PASS);
}

/* What XDP answers: a base packet (TLVs go to user space), with a checksum that adds up,
 * from the sender that owns a stateful session's counter. Returns -1 to reflect, else the
 * verdict. IPv6 forbids a zero UDP checksum (RFC 8200 8.1): dropped. A checksum that does not
 * add up may be corruption or a partial checksum that a veth or virtio sender left for
 * offload, which XDP cannot tell apart: the stack decides (it drops corruption, counted in
 * Udp6InCsumErrors) and the user-space engine answers the rest. RFC 8972 §3: a stateful
 * counter is one sender's; another sender of the same SSID gets its own sequence in user
 * space (a later pass to the stack keeps the claim: user space then numbers this sender from
 * the same counter). */
static __always_inline int reflectable(struct test_packet *t, struct stamp_reflector_session *s)
{
	if (t->udp_len != sizeof(*t->udp) + STAMP_BASE_LEN)
		return count(STAMP_PASS_TLVS, XDP_PASS);
	if (t->udp->check == 0)
		return count(STAMP_DROP_ZERO_CSUM, XDP_DROP);
	if (!base_csum_ok(t->ip6, t->udp, t->payload))
		return count(STAMP_PASS_CSUM, XDP_PASS);
	if ((s->flags & STAMP_F_STATEFUL) && !stamp_owned_by(s, &t->ip6->saddr, t->udp->source))
		return count(STAMP_PASS_OTHER_SENDER, XDP_PASS);
	return -1;
}

/* The reply's checksum, by RFC 1624, from what changes: the sender's sequence number,
 * timestamp, error estimate and the SSID only move (by multiples of 4 bytes), so they cancel
 * out; bytes 16..43 of the test packet (MBZ, not trusted to be zero) leave, and the
 * reflector's own fields come in (its sequence number and T3 are added when known). Sums of
 * raw 32-bit and 16-bit words, like the stored checksum: one's-complement sums do not care
 * about byte order or position within the word. */
static __always_inline __u64 reply_csum_start(struct test_packet *t, struct stamp_reflector_session *s,
					      __u64 t2_be)
{
	__u64 sum = (__u16)~t->udp->check;
	__u8 ttl_word[2] = { t->hop_limit, 0 };

#pragma nounroll
	for (int i = STAMP_OFF(stamp_test_pkt, mbz) / 4; i < STAMP_BASE_LEN / 4; i++) {
		__u32 w;

		__builtin_memcpy(&w, t->payload + i * 4, 4);
		sum += (__u32)~w;
	}
	return sum + (t2_be & 0xffffffff) + (t2_be >> 32) + s->error_estimate + *(__u16 *)ttl_word;
}

/* Route: where the reply goes, the route to its first destination as the kernel would forward
 * it (a FIB lookup, cached per CPU and session for FIB_CACHE_NS). Returns -1 with the egress
 * interface and MAC addresses in `fib`; else the verdict: without a route or a resolved
 * neighbour, the stack (and the user-space engine) answers. */
static __always_inline int route_reply(struct xdp_md *ctx, struct test_packet *t,
				       struct stamp_reflector_session *s, __u32 slot, __u32 new_hdr,
				       __u64 now, struct bpf_fib_lookup *fib)
{
	struct fib_cache *fc;
	__u32 dst[4];
	int rc;

	__builtin_memset(fib, 0, sizeof(*fib));
	if (s->nsegs)
		__builtin_memcpy(dst, s->segs[0], 16);
	else
		__builtin_memcpy(dst, &t->sender, 16);
	fc = bpf_map_lookup_elem(&stamp_fib_cache, &slot);
	if (fc && fc->expires_ns > now && fc->dst[0] == dst[0] && fc->dst[1] == dst[1] &&
	    fc->dst[2] == dst[2] && fc->dst[3] == dst[3]) {
		fib->ifindex = fc->ifindex;
		__builtin_memcpy(fib->smac, fc->smac, ETH_ALEN);
		__builtin_memcpy(fib->dmac, fc->dmac, ETH_ALEN);
		return -1;
	}
	fib->family = AF_INET6;
	fib->l4_protocol = IPPROTO_UDP;
	fib->tot_len = new_hdr + t->udp_len;
	fib->ifindex = ctx->ingress_ifindex;
	__builtin_memcpy(fib->ipv6_src, &t->local, 16);
	__builtin_memcpy(fib->ipv6_dst, dst, 16);
	/* On success the helper overwrites ipv6_dst with the next hop's address. */
	rc = bpf_fib_lookup(ctx, fib, sizeof(*fib), 0);
	if (rc == BPF_FIB_LKUP_RET_FWD_DISABLED) {
		/* The helper answers only where the interface forwards. A host that does not (a
		 * reflector that is no router) sends the reply back to the neighbour the test
		 * packet came from, which is where its route would point too. */
		fib->ifindex = ctx->ingress_ifindex;
		__builtin_memcpy(fib->smac, t->eth->h_dest, ETH_ALEN);
		__builtin_memcpy(fib->dmac, t->eth->h_source, ETH_ALEN);
	} else if (rc != BPF_FIB_LKUP_RET_SUCCESS) {
		return count(STAMP_PASS_NO_ROUTE, XDP_PASS);
	}
	if (fc) {
		fc->expires_ns = now + FIB_CACHE_NS;
		__builtin_memcpy(fc->dst, dst, 16);
		fc->ifindex = fib->ifindex;
		__builtin_memcpy(fc->smac, fib->smac, ETH_ALEN);
		__builtin_memcpy(fc->dmac, fib->dmac, ETH_ALEN);
	}
	return -1;
}

/* Header rewrite, after bpf_xdp_adjust_head gave the headers their new size: Ethernet to the
 * next hop, IPv6 from the local address, the session's return path as an SRH (segments[0] the
 * sender, the first waypoint at segments[n]), UDP with the ports swapped. Returns the payload,
 * where it was, or NULL when the frame is not as long as it must be. */
static __always_inline __u8 *rewrite_headers(struct xdp_md *ctx, struct test_packet *t,
					     struct stamp_reflector_session *s, struct bpf_fib_lookup *fib,
					     __u32 new_hdr)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = data + sizeof(*eth);
	struct udphdr *udp;
	__u32 n = s->nsegs, i;
	__u8 *payload;

	if ((void *)(ip6 + 1) > end || n > STAMP_MAX_SEGS)
		return NULL;
	__builtin_memcpy(eth->h_source, fib->smac, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, fib->dmac, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IPV6);
	*(__u32 *)ip6 = t->vtc;
	ip6->payload_len = bpf_htons(new_hdr - sizeof(*ip6) + t->udp_len);
	ip6->nexthdr = n ? IPPROTO_ROUTING_HDR : IPPROTO_UDP;
	ip6->hop_limit = REPLY_HOP_LIMIT;
	ip6->saddr = t->local;
	if (n) {
		struct ipv6_sr_hdr *srh = (void *)(ip6 + 1);
		__u8 *segs = (void *)(srh + 1);

		if ((void *)(segs + 16) > end)
			return NULL;
		srh->nexthdr = IPPROTO_UDP;
		srh->hdrlen = 2 * (n + 1);
		srh->type = SRH_TYPE;
		srh->segments_left = n;
		srh->first_segment = n; /* Last Entry */
		srh->flags = 0;
		srh->tag = 0;
		__builtin_memcpy(segs, &t->sender, 16); /* segments[0]: the final destination */
		for (i = 1; i <= STAMP_MAX_SEGS; i++) {
			__u8 *dst = segs + 16 * i;

			if (i > n)
				break;
			if ((void *)(dst + 16) > end)
				return NULL;
			/* segments[i] = waypoint n - i: the first waypoint sits at segments[n] */
			__builtin_memcpy(dst, s->segs[(n - i) & (STAMP_MAX_SEGS - 1)], 16);
		}
		__builtin_memcpy(&ip6->daddr, s->segs[0], 16);
	} else {
		ip6->daddr = t->sender;
	}
	udp = (void *)ip6 + new_hdr;
	if ((void *)(udp + 1) > end)
		return NULL;
	payload = (void *)(udp + 1);
	if ((void *)(payload + STAMP_BASE_LEN) > end)
		return NULL;
	udp->source = bpf_htons(t->dport);
	udp->dest = t->sport;
	udp->len = bpf_htons(t->udp_len);
	return payload;
}

/* The sender's fields the reply copies (network order). */
struct test_fields {
	__u32 seq;
	__u64 t1;
	__u16 err;
	__u8 hop_limit;
};

/* Payload rewrite: the reflector's packet (RFC 8762 §4.3.1 with the RFC 8972 SSID, which stays
 * where it is) over the test packet, T3 last, then the checksum. The pseudo-header's addresses
 * (final destination and source) and the ports are the same pair swapped: only the payload
 * changes the sum. */
static __always_inline void rewrite_payload(__u8 *p, struct udphdr *udp, const struct test_fields *in,
					    struct stamp_reflector_session *s, __u32 seq, __u64 t2_be, __u64 sum)
{
	__u64 t3_be;
	__u16 check;

	__builtin_memcpy(p + STAMP_OFF(stamp_reply_pkt, seq), &seq, 4);
	__builtin_memcpy(p + STAMP_OFF(stamp_reply_pkt, error_estimate), &s->error_estimate, 2);
	__builtin_memcpy(p + STAMP_OFF(stamp_reply_pkt, rx_timestamp), &t2_be, 8);
	__builtin_memcpy(p + STAMP_OFF(stamp_reply_pkt, sender_seq), &in->seq, 4);
	__builtin_memcpy(p + STAMP_OFF(stamp_reply_pkt, sender_timestamp), &in->t1, 8);
	__builtin_memcpy(p + STAMP_OFF(stamp_reply_pkt, sender_error_estimate), &in->err, 2);
	__builtin_memset(p + STAMP_OFF(stamp_reply_pkt, mbz1), 0, 2);
	p[STAMP_OFF(stamp_reply_pkt, sender_ttl)] = in->hop_limit;
	__builtin_memset(p + STAMP_OFF(stamp_reply_pkt, mbz2), 0, 3);
	t3_be = bpf_cpu_to_be64(stamp_timestamp(bpf_ktime_get_tai_ns(), s->flags));
	__builtin_memcpy(p + STAMP_OFF(stamp_reply_pkt, timestamp), &t3_be, 8);
	sum += seq + (t3_be & 0xffffffff) + (t3_be >> 32);
	check = csum_fold(sum);
	udp->check = check ? check : 0xffff;
}

SEC("xdp")
int stamp_xdp(struct xdp_md *ctx)
{
	struct cursor c = { (void *)(long)ctx->data, (void *)(long)ctx->data_end };
	struct stamp_reflector_session *s = NULL;
	struct test_packet t;
	struct test_fields in;
	struct bpf_fib_lookup fib;
	__u32 new_hdr, seq, slot = 0;
	__u64 t2, t2_be, sum;
	__u8 *payload;
	int v;

	/* Traffic that is not ours is not counted: it must cost next to nothing. */
	if (parse_test_packet(&c, &t) < 0)
		return XDP_PASS;
	if (!port_bit(stamp_port_bits, t.dport)) {
		if (port_bit(stamp_collect_bits, t.dport))
			return collect(t.ip6, t.udp, c.end, t.dport);
		return XDP_PASS;
	}
	/* A STAMP port: T2 now, before the lookups. */
	t2 = bpf_ktime_get_tai_ns();
	v = lookup_session(&t, c.end, &s, &slot);
	if (v >= 0)
		return v;
	if (!s)
		return XDP_PASS;
	v = reflectable(&t, s);
	if (v >= 0)
		return v;

	/* Everything needed from the old headers, before they move. */
	t.sender = t.ip6->saddr;
	t.local = t.ip6->daddr;
	t.hop_limit = t.ip6->hop_limit;
	t.vtc = *(__u32 *)t.ip6;
	t.sport = t.udp->source;
	__builtin_memcpy(&in.seq, t.payload + STAMP_OFF(stamp_test_pkt, seq), 4);
	__builtin_memcpy(&in.t1, t.payload + STAMP_OFF(stamp_test_pkt, timestamp), 8);
	__builtin_memcpy(&in.err, t.payload + STAMP_OFF(stamp_test_pkt, error_estimate), 2);
	in.hop_limit = t.hop_limit;
	t2_be = bpf_cpu_to_be64(stamp_timestamp(t2, s->flags));
	sum = reply_csum_start(&t, s, t2_be);

	/* The reply's headers: IPv6 + SRH of n waypoints and the sender. */
	if (s->nsegs > STAMP_MAX_SEGS)
		return count(STAMP_ABORT_ADJUST, XDP_ABORTED);
	new_hdr = sizeof(struct ipv6hdr) + (s->nsegs ? 8 + 16 * (s->nsegs + 1) : 0);
	v = route_reply(ctx, &t, s, slot, new_hdr, t2, &fib);
	if (v >= 0)
		return v;
	/* Nothing in the packet has changed yet: if XDP's headroom cannot take the longer header,
	 * the user-space engine answers instead. */
	if (t.hdr_len != new_hdr && bpf_xdp_adjust_head(ctx, (int)t.hdr_len - (int)new_hdr))
		return count(STAMP_PASS_NO_HEADROOM, XDP_PASS);

	/* Committed: only now may a stateful session's counter move. */
	seq = in.seq;
	if (s->flags & STAMP_F_STATEFUL)
		seq = bpf_htonl(__sync_fetch_and_add(&s->next_seq, 1));
	payload = rewrite_headers(ctx, &t, s, &fib, new_hdr);
	if (!payload)
		return count(STAMP_ABORT_ADJUST, XDP_ABORTED);
	rewrite_payload(payload, (struct udphdr *)payload - 1, &in, s, seq, t2_be, sum);
	if (fib.ifindex == ctx->ingress_ifindex)
		return count(STAMP_TX_REFLECTED, XDP_TX);
	count(STAMP_REDIRECT_REFLECTED, 0);
	return bpf_redirect(fib.ifindex, 0);
}

char LICENSE[] SEC("license") = "GPL";
