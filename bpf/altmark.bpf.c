// SPDX-License-Identifier: GPL-2.0
/* Alternate marking (RFC 9341) of SRv6 flows, as SRv6-PM: exact per-period loss of tenants'
 * traffic, measured on the traffic itself.
 *
 * altmark_tx (TC egress on the ingress edge's WAN interfaces): an IPv6 packet whose outer
 * destination starts a monitored flow and whose SID list is that flow's gets the "monitored"
 * bit and the flow's current colour in its outer Traffic Class, and is counted per colour.
 * altmark_rx (XDP) and altmark_rx_tc (TC ingress) on the egress edge's WAN interfaces: a packet
 * with the "monitored" bit is counted per colour for its flow. Everything else passes
 * untouched: the transmit side pays one 16-byte hash lookup on the outer destination, the
 * receive side one bit test. The agent uses the TC one: an interface takes one XDP program
 * here (no dispatcher in libbpf 1.1), and the STAMP reflector holds it.
 *
 * Counters are per CPU and never reset here: user space reads the colour that is not being
 * painted (both ends, half a period after a switch) and takes differences.
 */
#include <linux/pkt_cls.h>

#include "lib/parsing.h"
#include "segwan_altmark.h"

/* A TC program that returns TC_ACT_OK ends classification: the filters after it never run.
 * These programs only annotate and count, so they let the chain go on. */
#define TC_NEXT TC_ACT_UNSPEC


/* Traffic Class bits used; set before load */
const volatile __u8 altmark_flag = ALTMARK_DEFAULT_FLAG;
const volatile __u8 altmark_colour = ALTMARK_DEFAULT_COLOUR;

/* outer destinations that start a monitored flow, written by edge-manager (the quick no) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct altmark_addr);
	__type(value, __u32);
	__uint(max_entries, ALTMARK_MAX_FLOWS);
} altmark_tx_heads SEC(".maps");

/* flows this edge encapsulates and colours, written by edge-manager (colour every period) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct altmark_flow_key);
	__type(value, struct altmark_flow);
	__uint(max_entries, ALTMARK_MAX_FLOWS);
} altmark_tx_flows SEC(".maps");

/* packets and bytes sent per flow slot and colour, per CPU, read by edge-manager */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct altmark_counter);
	__uint(max_entries, 2 * ALTMARK_MAX_FLOWS);
} altmark_tx_counters SEC(".maps");

/* flows this edge receives and counts, written by edge-manager */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct altmark_flow_key);
	__type(value, struct altmark_flow);
	__uint(max_entries, ALTMARK_MAX_FLOWS);
} altmark_rx_flows SEC(".maps");

/* packets and bytes received per flow slot and colour, per CPU, read by edge-manager */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct altmark_counter);
	__uint(max_entries, 2 * ALTMARK_MAX_FLOWS);
} altmark_rx_counters SEC(".maps");

static __always_inline __u8 get_tclass(const struct ipv6hdr *ip6)
{
	return (__u8)((ip6->priority << 4) | (ip6->flow_lbl[0] >> 4));
}

static __always_inline void set_tclass(struct ipv6hdr *ip6, __u8 tc)
{
	ip6->priority = tc >> 4;
	ip6->flow_lbl[0] = (__u8)((ip6->flow_lbl[0] & 0x0f) | ((tc & 0x0f) << 4));
}

/* The flow key of a packet: the SRH's segment list, or the outer destination alone.
 * Returns 0, or -1 when the SRH is cut short or holds more SIDs than a key does. */
static __always_inline int flow_key(struct cursor *c, struct ipv6hdr *ip6, struct altmark_flow_key *key)
{
	struct cursor h = *c;
	struct ipv6_sr_hdr *srh;
	__u8 *segs;
	__u32 n, i;

	if (ip6->nexthdr != IPPROTO_ROUTING_HDR) {
		key->nsegs = 1;
		__builtin_memcpy(key->segs[0], &ip6->daddr, 16);
		return 0;
	}
	if (parse_srh(&h, &srh) < 0)
		return -1;
	n = (__u32)srh->first_segment + 1; /* Last Entry + 1 */
	if (n > ALTMARK_MAX_SEGS)
		return -1;
	segs = (__u8 *)(srh + 1);
	key->nsegs = n;
	for (i = 0; i < ALTMARK_MAX_SEGS; i++) {
		if (i >= n)
			break;
		if ((void *)(segs + 16 * (i + 1)) > c->end)
			return -1;
		__builtin_memcpy(key->segs[i], segs + 16 * i, 16);
	}
	return 0;
}

static __always_inline void count(void *counters, __u32 slot, __u32 colour, __u64 bytes)
{
	__u32 idx = slot * 2 + (colour & 1);
	struct altmark_counter *ctr = bpf_map_lookup_elem(counters, &idx);

	if (ctr) {
		ctr->packets++;
		ctr->bytes += bytes;
	}
}

SEC("tc")
int altmark_tx(struct __sk_buff *skb)
{
	struct cursor c = {(void *)(long)skb->data, (void *)(long)skb->data_end};
	struct altmark_flow_key key = {};
	struct altmark_flow *flow;
	struct ipv6hdr *ip6;
	struct ethhdr *eth;
	__u8 tc;

	if (parse_eth(&c, &eth) != ETH_P_IPV6 || parse_ipv6(&c, &ip6) < 0)
		return TC_NEXT;
	if (!bpf_map_lookup_elem(&altmark_tx_heads, &ip6->daddr))
		return TC_NEXT;
	if (flow_key(&c, ip6, &key) < 0)
		return TC_NEXT;
	flow = bpf_map_lookup_elem(&altmark_tx_flows, &key);
	if (!flow)
		return TC_NEXT;
	tc = get_tclass(ip6) & (__u8)~(altmark_flag | altmark_colour);
	tc |= altmark_flag | ((flow->colour & 1) ? altmark_colour : 0);
	set_tclass(ip6, tc);
	count(&altmark_tx_counters, flow->slot, flow->colour, skb->len);
	return TC_NEXT;
}

/* Counts a received packet if it is marked and its flow is monitored here. */
static __always_inline void count_rx(void *data, void *data_end, __u64 bytes)
{
	struct cursor c = {data, data_end};
	struct altmark_flow_key key = {};
	struct altmark_flow *flow;
	struct ipv6hdr *ip6;
	struct ethhdr *eth;
	__u8 tc;

	if (parse_eth(&c, &eth) != ETH_P_IPV6 || parse_ipv6(&c, &ip6) < 0)
		return;
	tc = get_tclass(ip6);
	if (!(tc & altmark_flag))
		return;
	if (flow_key(&c, ip6, &key) < 0)
		return;
	flow = bpf_map_lookup_elem(&altmark_rx_flows, &key);
	if (flow)
		count(&altmark_rx_counters, flow->slot, (tc & altmark_colour) ? 1 : 0, bytes);
}

SEC("xdp")
int altmark_rx(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;

	count_rx(data, data_end, (__u64)(data_end - data));
	return XDP_PASS;
}

SEC("tc")
int altmark_rx_tc(struct __sk_buff *skb)
{
	count_rx((void *)(long)skb->data, (void *)(long)skb->data_end, skb->len);
	return TC_NEXT;
}

char LICENSE[] SEC("license") = "GPL";
