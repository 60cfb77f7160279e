/* STAMP timestamps in BPF programs (RFC 8762 section 4.2.1): NTP (UTC) or PTPv2 (TAI) from
 * bpf_ktime_get_tai_ns(), shared by the reflector and the sender's T1 stamper. The program
 * that includes this defines the per-CPU second cache and the TAI - UTC offset below. */
#ifndef SEGWAN_BPF_STAMP_TIME_H
#define SEGWAN_BPF_STAMP_TIME_H

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <linux/types.h>

#include "segwan_stamp.h"

#define NS_PER_SEC 1000000000ULL
#define NTP_UNIX_OFFSET 2208988800ULL

/* TAI - UTC in whole seconds (as adjtimex gives it) for NTP timestamps, written by
 * edge-manager through the skeleton's .bss */
volatile __u64 tai_utc_offset_s;

/* The second the clock is in, per CPU: a 64-bit division costs more than the rest of a
 * timestamp, and consecutive packets almost always fall in the same second. */
struct second_cache {
	__u64 start_ns; /* TAI ns at the start of `sec` */
	__u64 sec;
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct second_cache);
	__uint(max_entries, 1);
} stamp_second SEC(".maps");

static __always_inline __u64 stamp_timestamp(__u64 tai_ns, __u32 flags)
{
	__u32 zero = 0;
	struct second_cache *c = bpf_map_lookup_elem(&stamp_second, &zero);
	__u64 t, sec, rem;

	if (c && tai_ns - c->start_ns < NS_PER_SEC) {
		sec = c->sec;
		rem = tai_ns - c->start_ns;
	} else {
		sec = tai_ns / NS_PER_SEC;
		rem = tai_ns - sec * NS_PER_SEC;
		if (c) {
			c->sec = sec;
			c->start_ns = tai_ns - rem;
		}
	}
	if (flags & STAMP_F_PTP)
		return (sec << 32) | rem;
	/* NTP is UTC: step back by the TAI-UTC offset (whole seconds). */
	t = sec - tai_utc_offset_s;
	/* rem * 2^32 / 10^9 as a multiply and shift: 4611686018 = 2^62 / 10^9 (rounded down);
	 * rem < 2^30 keeps the product below 2^63, and the result is off by less than one unit. */
	return (((t + NTP_UNIX_OFFSET) & 0xffffffffULL) << 32) | ((rem * 4611686018ULL) >> 30);
}

/* Stack buffers are only byte-aligned as far as the verifier knows: copy, never store wide. */
static __always_inline void put_be64(__u8 *p, __u64 v)
{
	__u64 be = bpf_cpu_to_be64(v);

	__builtin_memcpy(p, &be, 8);
}

#endif
