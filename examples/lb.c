// A per-service load-balancer table: the demo behind `purebpf demo`.
//
// services: HASH_OF_MAPS, service id (the UDP/TCP destination port) -> backend table.
// Each backend table is an ARRAY of u32 with BPF_F_INNER_MAP, so services may have
// tables of different sizes: slot 0 holds the number of backends n, slots 1..n their ids.
// The program hashes the packet's flow (addresses, ports, protocol) to one backend and
// returns its id (0: no service or an empty table). User space grows a table by building
// a new one aside and swapping it in with one update, so no packet sees a half-built table.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_BACKENDS 64

struct backends {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_INNER_MAP);
	__uint(max_entries, MAX_BACKENDS + 1);
	__type(key, __u32);
	__type(value, __u32);
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 256);
	__type(key, __u32);
	__array(values, struct backends);
} services SEC(".maps");

// Packets seen per service: a per-CPU counter, read and summed from user space.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} packets SEC(".maps");

static __always_inline __u32 mix(__u32 h, __u32 v)
{
	h ^= v;
	h *= 0x9e3779b1;
	return h ^ (h >> 15);
}

// One record per packet that `purebpf demo --live` sends: the service, the backend the
// program chose (0: none) and the size of the table it used.
struct event {
	__u32 service;
	__u32 backend;
	__u32 table_size;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

// The backend for the packet in [data, end): 0 for no service, an empty or missing table.
static __always_inline __u32 pick(void *data, void *end, __u32 *service, __u32 *size)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *l4 = (void *)(ip + 1); // UDP and TCP both start with the two ports

	*service = 0;
	*size = 0;
	if ((void *)(l4 + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5)
		return 0;
	if (ip->protocol != IPPROTO_UDP && ip->protocol != IPPROTO_TCP)
		return 0;

	*service = bpf_ntohs(l4->dest);
	__u64 one = 1, *seen = bpf_map_lookup_elem(&packets, service);
	if (seen)
		*seen += 1;
	else
		bpf_map_update_elem(&packets, service, &one, BPF_NOEXIST);

	void *table = bpf_map_lookup_elem(&services, service);
	if (!table)
		return 0;
	__u32 zero = 0, *count = bpf_map_lookup_elem(table, &zero);
	if (!count || *count == 0 || *count > MAX_BACKENDS)
		return 0;
	*size = *count;

	__u32 h = mix(mix(mix(0, ip->saddr), ip->daddr), ((__u32)l4->source << 16) | l4->dest);
	__u32 slot = 1 + mix(h, ip->protocol) % *count;
	__u32 *backend = bpf_map_lookup_elem(table, &slot);
	return backend ? *backend : 0;
}

// For BPF_PROG_TEST_RUN: the chosen backend id is the return value.
SEC("xdp")
int pick_backend(struct xdp_md *ctx)
{
	__u32 service, size;

	return pick((void *)(long)ctx->data, (void *)(long)ctx->data_end, &service, &size);
}

// On an interface: the choice goes to the ring buffer and the packet is dropped (the
// demo's traffic never leaves its veth pair). Other traffic passes untouched.
SEC("xdp")
int balance(struct xdp_md *ctx)
{
	__u32 service, size;
	__u32 backend = pick((void *)(long)ctx->data, (void *)(long)ctx->data_end, &service,
			     &size);

	if (!service)
		return XDP_PASS;
	struct event ev = { .service = service, .backend = backend, .table_size = size };
	bpf_ringbuf_output(&events, &ev, sizeof(ev), 0);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
