// SPDX-License-Identifier: GPL-2.0
/* STAMP session-reflector on XDP (RFC 8762, RFC 8972 SSID).
 *
 * A test packet to a local STAMP address and port (IPv6/UDP, with or without an SRH whose
 * Segments Left is 0) that belongs to a configured unauthenticated session is turned into the
 * reflector packet in place: T2 taken on arrival, the sender's fields copied, the sender TTL
 * set to the received hop limit, addresses and ports swapped, the SRH replaced by the session's
 * return path (the header grows or shrinks), T3 written last, the UDP checksum updated, and the
 * frame sent back out (XDP_TX). Authenticated sessions, packets with TLVs and unknown SSIDs go
 * to the stack, where the user-space engine answers them. Every verdict is counted by reason.
 */
#include "lib/csum.h"
#include "lib/parsing.h"
#include "segwan_stamp.h"

#define NS_PER_SEC 1000000000ULL
#define NTP_UNIX_OFFSET 2208988800ULL
#define IPPROTO_ROUTING_HDR 43
#define SRH_TYPE 4
#define REPLY_HOP_LIMIT 64

/* local STAMP addresses and ports, written by edge-manager */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct stamp_listener_key);
	__type(value, __u32);
	__uint(max_entries, STAMP_MAX_LISTENERS);
} stamp_listeners SEC(".maps");

/* reflector sessions, written by edge-manager, read (and next_seq bumped) per packet */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct stamp_session_key);
	__type(value, struct stamp_reflector_session);
	__uint(max_entries, STAMP_MAX_SESSIONS);
} stamp_sessions SEC(".maps");

/* TAI - UTC for NTP timestamps, written by edge-manager */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct stamp_config);
	__uint(max_entries, 1);
} stamp_config SEC(".maps");

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

static __always_inline __u64 stamp_timestamp(__u64 tai_ns, __u32 flags)
{
	__u32 key = 0;
	struct stamp_config *cfg;
	__u64 utc, sec, frac;

	if (flags & STAMP_F_PTP)
		return ((tai_ns / NS_PER_SEC) << 32) | (tai_ns % NS_PER_SEC);
	cfg = bpf_map_lookup_elem(&stamp_config, &key);
	utc = tai_ns - (cfg ? (__u64)cfg->tai_utc_offset_ns : 0);
	sec = (utc / NS_PER_SEC + NTP_UNIX_OFFSET) & 0xffffffffULL;
	frac = ((utc % NS_PER_SEC) << 32) / NS_PER_SEC;
	return (sec << 32) | frac;
}

/* Stack buffers are only byte-aligned as far as the verifier knows: copy, never store wide. */
static __always_inline void put_be64(__u8 *p, __u64 v)
{
	__u64 be = bpf_cpu_to_be64(v);

	__builtin_memcpy(p, &be, 8);
}

SEC("xdp")
int stamp_reflector(struct xdp_md *ctx)
{
	const __u64 t2 = bpf_ktime_get_tai_ns(); /* as early as possible */
	struct cursor c = { (void *)(long)ctx->data, (void *)(long)ctx->data_end };
	struct stamp_listener_key lkey = {};
	struct stamp_session_key skey = {};
	struct stamp_reflector_session *s;
	struct ethhdr *eth;
	struct ipv6hdr *ip6;
	struct udphdr *udp;
	__u8 mac_src[ETH_ALEN], mac_dst[ETH_ALEN];
	struct in6_addr sender, local;
	__u8 old[STAMP_BASE_LEN] = {}, new_[STAMP_BASE_LEN] = {};
	__u32 old_hdr, new_hdr, vtc, seq, n;
	__u16 sport, dport, udp_len, check;
	__u8 hop_limit, *payload;
	__s32 nh;
	__u64 sum;

	if (parse_eth(&c, &eth) != ETH_P_IPV6)
		return count(STAMP_PASS_NOT_IPV6, XDP_PASS);
	nh = parse_ipv6(&c, &ip6);
	old_hdr = sizeof(*ip6);
	if (nh == IPPROTO_ROUTING_HDR) {
		struct ipv6_sr_hdr_min {
			__u8 nexthdr, hdrlen, type, segments_left;
		} *srh = c.pos;
		__u32 len;

		if ((void *)(srh + 1) > c.end)
			return count(STAMP_PASS_NOT_UDP, XDP_PASS);
		if (srh->type != SRH_TYPE)
			return count(STAMP_PASS_NOT_UDP, XDP_PASS);
		if (srh->segments_left != 0)
			return count(STAMP_PASS_SRH_TRANSIT, XDP_PASS);
		len = ((__u32)srh->hdrlen + 1) * 8;
		nh = srh->nexthdr;
		if (c.pos + len > c.end)
			return count(STAMP_PASS_NOT_UDP, XDP_PASS);
		c.pos += len;
		old_hdr += len;
	}
	if (nh != IPPROTO_UDP)
		return count(STAMP_PASS_NOT_UDP, XDP_PASS);
	if (parse_udp(&c, &udp) < 0)
		return count(STAMP_PASS_NOT_UDP, XDP_PASS);

	__builtin_memcpy(lkey.addr, &ip6->daddr, 16);
	lkey.port = bpf_ntohs(udp->dest);
	if (!bpf_map_lookup_elem(&stamp_listeners, &lkey))
		return count(STAMP_PASS_NOT_LISTENER, XDP_PASS);

	/* From here on it is STAMP traffic for us. */
	udp_len = bpf_ntohs(udp->len);
	payload = c.pos;
	if (udp_len < sizeof(*udp) + STAMP_BASE_LEN || (void *)udp + udp_len > c.end ||
	    (void *)(payload + STAMP_BASE_LEN) > c.end)
		return count(STAMP_DROP_MALFORMED, XDP_DROP);
	__builtin_memcpy(skey.addr, &ip6->daddr, 16);
	skey.port = lkey.port;
	skey.ssid = ((__u16)payload[14] << 8) | payload[15];
	s = bpf_map_lookup_elem(&stamp_sessions, &skey);
	if (!s)
		return count(STAMP_PASS_NO_SESSION, XDP_PASS);
	if (udp_len != sizeof(*udp) + STAMP_BASE_LEN)
		return count(STAMP_PASS_TLVS, XDP_PASS);

	/* Everything needed from the old headers, before they move. */
	__builtin_memcpy(old, payload, STAMP_BASE_LEN);
	__builtin_memcpy(mac_src, eth->h_source, ETH_ALEN);
	__builtin_memcpy(mac_dst, eth->h_dest, ETH_ALEN);
	sender = ip6->saddr;
	local = ip6->daddr;
	hop_limit = ip6->hop_limit;
	vtc = *(__u32 *)ip6; /* version, traffic class, flow label */
	sport = udp->source;
	dport = udp->dest;
	check = udp->check;

	/* The reflector's packet (RFC 8762 §4.3.1 with the RFC 8972 SSID). */
	__builtin_memcpy(&new_[12], &s->error_estimate, 2);
	new_[14] = old[14];
	new_[15] = old[15];
	put_be64(&new_[16], stamp_timestamp(t2, s->flags));
	__builtin_memcpy(&new_[24], &old[0], 4);  /* Session-Sender Sequence Number */
	__builtin_memcpy(&new_[28], &old[4], 8);  /* Session-Sender Timestamp */
	__builtin_memcpy(&new_[36], &old[12], 2); /* Session-Sender Error Estimate */
	new_[40] = hop_limit;                     /* Ses-Sender TTL */

	/* Resize the headers for the return path: IPv6 + SRH of n waypoints + the sender. */
	n = s->nsegs;
	if (n > STAMP_MAX_SEGS)
		return count(STAMP_ABORT_ADJUST, XDP_ABORTED);
	new_hdr = sizeof(*ip6) + (n ? 8 + 16 * (n + 1) : 0);
	/* Nothing in the packet has changed yet: if XDP's headroom cannot take the longer header,
	 * the user-space engine answers instead. */
	if (bpf_xdp_adjust_head(ctx, (int)old_hdr - (int)new_hdr))
		return count(STAMP_PASS_NO_HEADROOM, XDP_PASS);

	/* Committed: only now may a stateful session's counter move. */
	__builtin_memcpy(&seq, &old[0], 4);
	if (s->flags & STAMP_F_STATEFUL)
		seq = bpf_htonl(__sync_fetch_and_add(&s->next_seq, 1));
	__builtin_memcpy(&new_[0], &seq, 4);

	c.pos = (void *)(long)ctx->data;
	c.end = (void *)(long)ctx->data_end;
	eth = c.pos;
	ip6 = c.pos + sizeof(*eth);
	if ((void *)(ip6 + 1) > c.end)
		return count(STAMP_ABORT_ADJUST, XDP_ABORTED);
	__builtin_memcpy(eth->h_source, mac_dst, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, mac_src, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IPV6);
	*(__u32 *)ip6 = vtc;
	ip6->payload_len = bpf_htons(new_hdr - sizeof(*ip6) + udp_len);
	ip6->nexthdr = n ? IPPROTO_ROUTING_HDR : IPPROTO_UDP;
	ip6->hop_limit = REPLY_HOP_LIMIT;
	ip6->saddr = local;
	if (n) {
		__u8 *srh = (void *)(ip6 + 1);
		__u32 i;

		if ((void *)(srh + 8 + 16) > c.end)
			return count(STAMP_ABORT_ADJUST, XDP_ABORTED);
		srh[0] = IPPROTO_UDP;
		srh[1] = 2 * (n + 1);
		srh[2] = SRH_TYPE;
		srh[3] = n; /* Segments Left */
		srh[4] = n; /* Last Entry */
		srh[5] = 0;
		srh[6] = 0;
		srh[7] = 0;
		__builtin_memcpy(srh + 8, &sender, 16); /* segments[0]: the final destination */
		for (i = 1; i <= STAMP_MAX_SEGS; i++) {
			__u8 *dst = srh + 8 + 16 * i;

			if (i > n)
				break;
			if ((void *)(dst + 16) > c.end)
				return count(STAMP_ABORT_ADJUST, XDP_ABORTED);
			/* segments[i] = waypoint n - i: the first waypoint sits at segments[n] */
			__builtin_memcpy(dst, s->segs[(n - i) & (STAMP_MAX_SEGS - 1)], 16);
		}
		__builtin_memcpy(&ip6->daddr, s->segs[0], 16);
	} else {
		ip6->daddr = sender;
	}

	udp = (void *)ip6 + new_hdr;
	if ((void *)(udp + 1) > c.end)
		return count(STAMP_ABORT_ADJUST, XDP_ABORTED);
	payload = (void *)(udp + 1);
	if ((void *)(payload + STAMP_BASE_LEN) > c.end)
		return count(STAMP_ABORT_ADJUST, XDP_ABORTED);
	udp->source = dport;
	udp->dest = sport;
	udp->len = bpf_htons(udp_len);

	/* T3 last; the checksum only has to account for the payload: the pseudo-header's
	 * addresses (final destination and source) and the ports are the same pair swapped. */
	put_be64(&new_[4], stamp_timestamp(bpf_ktime_get_tai_ns(), s->flags));
	__builtin_memcpy(payload, new_, STAMP_BASE_LEN);
	sum = bpf_csum_diff((__be32 *)old, STAMP_BASE_LEN, (__be32 *)new_, STAMP_BASE_LEN,
			    (__u16)~check);
	check = csum_fold(sum);
	udp->check = check ? check : 0xffff;
	return count(STAMP_TX_REFLECTED, XDP_TX);
}

char LICENSE[] SEC("license") = "GPL";
