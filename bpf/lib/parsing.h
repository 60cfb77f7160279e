/* Header-only packet parsing for XDP and TC programs: one bounds check per header, each
 * helper returns the next protocol (or -1) and advances the cursor. */
#ifndef SEGWAN_BPF_PARSING_H
#define SEGWAN_BPF_PARSING_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ipv6.h>
#include <linux/seg6.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

struct cursor {
	void *pos;
	void *end;
};

/* A 16-bit length field in host order, bounded for the verifier. Older verifiers (Debian 12's
 * 6.1 among them; 6.18's tracks it) do not track a byte swap's result (BPF_END leaves the
 * register unknown), so `bpf_ntohs(len)` added to a packet pointer is refused there ("math between pkt
 * pointer and register with unbounded min value"). The mask says what the swap already
 * guarantees; the asm keeps the compiler from dropping it as redundant. */
static __always_inline __u32 ntohs_len(__be16 v)
{
	__u32 x = bpf_ntohs(v);

	asm volatile("%[x] &= 0xffff" : [x] "+r"(x));
	return x;
}

static __always_inline int parse_eth(struct cursor *c, struct ethhdr **eth)
{
	struct ethhdr *h = c->pos;

	if ((void *)(h + 1) > c->end)
		return -1;
	c->pos = h + 1;
	*eth = h;
	return bpf_ntohs(h->h_proto);
}

static __always_inline int parse_ipv6(struct cursor *c, struct ipv6hdr **ip6)
{
	struct ipv6hdr *h = c->pos;

	if ((void *)(h + 1) > c->end)
		return -1;
	c->pos = h + 1;
	*ip6 = h;
	return h->nexthdr;
}

#define IPPROTO_ROUTING_HDR 43
#define SRH_TYPE 4

/* The SRv6 Segment Routing Header (RFC 8754) at the cursor, whole: one parser for the three
 * programs. Returns its Next Header and moves past it, or -1 when it is not an SRH (another
 * routing type) or is cut short. The segments are at (*srh)->segments, Last Entry + 1 of them
 * ((*srh)->first_segment is the Last Entry); a reader checks each against the end itself. */
static __always_inline int parse_srh(struct cursor *c, struct ipv6_sr_hdr **srh)
{
	struct ipv6_sr_hdr *h = c->pos;
	__u32 len;

	if ((void *)(h + 1) > c->end || h->type != SRH_TYPE)
		return -1;
	len = ((__u32)h->hdrlen + 1) * 8;
	if (c->pos + len > c->end)
		return -1;
	c->pos += len;
	*srh = h;
	return h->nexthdr;
}

static __always_inline int parse_udp(struct cursor *c, struct udphdr **udp)
{
	struct udphdr *h = c->pos;

	if ((void *)(h + 1) > c->end)
		return -1;
	c->pos = h + 1;
	*udp = h;
	return 0;
}

#endif
