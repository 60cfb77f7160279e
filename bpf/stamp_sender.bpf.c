// SPDX-License-Identifier: GPL-2.0
/* STAMP sender's T1 at TC egress (RFC 8762 section 4.2): an unauthenticated test packet of a
 * sender session configured here gets its Timestamp (T1) written as it leaves the WAN
 * interface, with the UDP checksum updated, so the sender's scheduling and the stack's queues
 * stay out of the measured delay. The packet's SSID (RFC 8972) finds the session; everything
 * else passes untouched.
 */
#include <linux/pkt_cls.h>

#include "lib/parsing.h"
#include "lib/stamp_time.h"
#include "segwan_stamp.h"

/* TC_ACT_OK would end classification and hide the packet from the filters after this one */
#define TC_NEXT TC_ACT_UNSPEC
#define STAMP_TS_OFF STAMP_OFF(stamp_test_pkt, timestamp)
#define STAMP_SSID_OFF STAMP_OFF(stamp_test_pkt, ssid)

/* sender sessions by SSID, written by edge-manager */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct stamp_sender_session);
	__uint(max_entries, 65536);
} stamp_senders SEC(".maps");

/* test packets stamped, per CPU, read by edge-manager */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} stamp_sender_stamped SEC(".maps");

SEC("tc")
int stamp_sender_t1(struct __sk_buff *skb)
{
	struct cursor c = {(void *)(long)skb->data, (void *)(long)skb->data_end};
	struct stamp_sender_session *s;
	struct ipv6hdr *ip6;
	struct ethhdr *eth;
	struct udphdr *udp;
	__u32 ssid, zero = 0, udp_off = ETH_HLEN + sizeof(struct ipv6hdr), ts_off;
	__be32 old[2], new_[2];
	__u8 *payload;
	__u64 *n, ts;
	int proto;

	if (parse_eth(&c, &eth) != ETH_P_IPV6)
		return TC_NEXT;
	proto = parse_ipv6(&c, &ip6);
	if (proto == IPPROTO_ROUTING_HDR) {
		struct ipv6_sr_hdr *srh;

		proto = parse_srh(&c, &srh);
		if (proto < 0)
			return TC_NEXT;
		udp_off += ((__u32)srh->hdrlen + 1) * 8;
	}
	if (proto != IPPROTO_UDP || parse_udp(&c, &udp) < 0)
		return TC_NEXT;
	payload = c.pos;
	if ((void *)(payload + STAMP_BASE_LEN) > c.end)
		return TC_NEXT;
	ssid = ((__u32)payload[STAMP_SSID_OFF] << 8) | payload[STAMP_SSID_OFF + 1];
	s = bpf_map_lookup_elem(&stamp_senders, &ssid);
	if (!s || !s->active || bpf_ntohs(udp->dest) != s->reflector_port)
		return TC_NEXT;

	ts = bpf_cpu_to_be64(stamp_timestamp(bpf_ktime_get_tai_ns(), s->flags));
	__builtin_memcpy(old, payload + STAMP_TS_OFF, 8);
	__builtin_memcpy(new_, &ts, 8);
	ts_off = udp_off + sizeof(struct udphdr) + STAMP_TS_OFF;
	/* the checksum first, while the offsets are valid; then the bytes */
	if (bpf_l4_csum_replace(skb, udp_off + 6, old[0], new_[0], 4) ||
	    bpf_l4_csum_replace(skb, udp_off + 6, old[1], new_[1], 4) ||
	    bpf_skb_store_bytes(skb, ts_off, &ts, 8, 0))
		return TC_NEXT;
	n = bpf_map_lookup_elem(&stamp_sender_stamped, &zero);
	if (n)
		*n += 1;
	return TC_NEXT;
}

char LICENSE[] SEC("license") = "GPL";
