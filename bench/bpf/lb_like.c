// A small load-balancer-shaped object for bench/bench_load.py: what both purebpf and
// libbpf can load. Plain maps (HASH, LRU_HASH, PERCPU_ARRAY), an ARRAY_OF_MAPS with two
// declared slots, global data in .data/.rodata/.bss, and three programs (XDP, XDP, TC).
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct backend {
	__u32 addr;
	__u16 port;
	__u16 weight;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct backend);
} backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u32);
} conntrack SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

// Per-service backend rings: ARRAY inner maps under one outer map, two slots declared.
struct ring {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
};
struct ring ring0 SEC(".maps"), ring1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 16);
	__type(key, __u32);
	__array(values, struct ring);
} services SEC(".maps") = {
	.values = { [0] = &ring0, [1] = &ring1 },
};

const volatile __u32 ring_size = 64;     // .rodata
const volatile __u32 default_backend = 0;
__u64 packets = 0;                       // .bss
__u32 hash_seed = 0x9e3779b9;            // .data

static __always_inline void count(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&stats, &idx);
	if (c)
		(*c)++;
}

static __always_inline int pick(__u32 svc, __u32 flow)
{
	void *r = bpf_map_lookup_elem(&services, &svc);
	if (!r)
		return -1;
	__u32 slot = (flow * hash_seed) % ring_size;
	__u32 *id = bpf_map_lookup_elem(r, &slot);
	if (!id)
		return -1;
	struct backend *be = bpf_map_lookup_elem(&backends, id);
	return be ? (int)be->addr : -1;
}

SEC("xdp")
int lb_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 *req = data;
	if ((void *)(req + 2) > end)
		return XDP_PASS;
	__u64 key = ((__u64)req[0] << 32) | req[1];
	__u32 *cached = bpf_map_lookup_elem(&conntrack, &key);
	packets++;
	if (cached) {
		count(0);
		return XDP_TX;
	}
	int be = pick(req[0] & 15, req[1]);
	if (be < 0) {
		count(1);
		return default_backend ? XDP_PASS : XDP_DROP;
	}
	__u32 v = (__u32)be;
	bpf_map_update_elem(&conntrack, &key, &v, BPF_ANY);
	count(2);
	return XDP_TX;
}

SEC("xdp")
int lb_stats(struct xdp_md *ctx)
{
	count(3);
	return XDP_PASS;
}

SEC("tc")
int lb_tc(struct __sk_buff *skb)
{
	__u32 flow = skb->hash;
	int be = pick(flow & 15, flow);
	count(be < 0 ? 4 : 5);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
