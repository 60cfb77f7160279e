// SPDX-License-Identifier: GPL-2.0
/* Baselines the benchmarks measure SegWAN's programs against, in the same run:
 *  - xdp_pass: returns XDP_PASS (the floor for a packet that is not ours);
 *  - tc_pass: returns TC_ACT_OK, the same floor for TC programs;
 *  - xdp_min_reflector: the least a STAMP reflector can do on an IPv6/UDP test packet with
 *    no SRH: swap MACs, addresses and ports, write one timestamp, fix the UDP checksum
 *    incrementally for what changed, XDP_TX.
 */
#include "lib/csum.h"
#include "lib/parsing.h"

#define STAMP_PORT 862
#define STAMP_TS_OFFSET 16 /* reflector's Receive Timestamp in the unauthenticated layout */

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("tc")
int tc_pass(struct __sk_buff *skb)
{
	return 0; /* TC_ACT_OK */
}

/* Adds the difference between 8 new and 8 old bytes to a checksum (RFC 1624). */
static __always_inline __u16 csum_replace8(__u16 check, __u64 old, __u64 new_)
{
	__u64 sum = (__u16)~check;

	sum += ~old & 0xffff;
	sum += (~old >> 16) & 0xffff;
	sum += (~old >> 32) & 0xffff;
	sum += (~old >> 48) & 0xffff;
	sum += new_ & 0xffff;
	sum += (new_ >> 16) & 0xffff;
	sum += (new_ >> 32) & 0xffff;
	sum += (new_ >> 48) & 0xffff;
	return csum_fold(sum);
}

SEC("xdp")
int xdp_min_reflector(struct xdp_md *ctx)
{
	struct cursor c = { (void *)(long)ctx->data, (void *)(long)ctx->data_end };
	struct ethhdr *eth;
	struct ipv6hdr *ip6;
	struct udphdr *udp;
	unsigned char mac[ETH_ALEN];
	struct in6_addr addr;
	__u16 port;
	__u64 *ts, old, now;

	if (parse_eth(&c, &eth) != ETH_P_IPV6)
		return XDP_PASS;
	if (parse_ipv6(&c, &ip6) != IPPROTO_UDP)
		return XDP_PASS;
	if (parse_udp(&c, &udp) < 0 || udp->dest != bpf_htons(STAMP_PORT))
		return XDP_PASS;
	ts = c.pos + STAMP_TS_OFFSET;
	if ((void *)(ts + 1) > c.end)
		return XDP_PASS;

	__builtin_memcpy(mac, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, mac, ETH_ALEN);
	/* Swapping addresses and ports leaves the checksum's sum unchanged. */
	addr = ip6->saddr;
	ip6->saddr = ip6->daddr;
	ip6->daddr = addr;
	port = udp->source;
	udp->source = udp->dest;
	udp->dest = port;
	old = *ts;
	now = bpf_cpu_to_be64(bpf_ktime_get_tai_ns());
	*ts = now;
	udp->check = csum_replace8(udp->check, old, now);
	return XDP_TX;
}

/* Counts and drops every frame: the far end of a benchmark link, counting what comes back. */
volatile __u64 xdp_counted;

SEC("xdp")
int xdp_count_drop(struct xdp_md *ctx)
{
	__sync_fetch_and_add(&xdp_counted, 1);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
