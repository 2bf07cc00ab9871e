// Outer maps declared and initialised in C, the way the kernel's map-in-map document does it.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

// The seed's example: an array of DEVMAPs, initialised declaratively.
struct inner_map {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 10);
	__type(key, __u32);
	__type(value, __u32);
} inner_map1 SEC(".maps"), inner_map2 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner_map);
} outer_map SEC(".maps") = {
	.values = { &inner_map1, &inner_map2 }
};

// Inner ARRAYs of different sizes under one outer map (BPF_F_INNER_MAP), and an
// anonymous inner struct as the template.
struct sized {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_INNER_MAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
};
struct sized small SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_INNER_MAP);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} big SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_ARRAY);
		__uint(map_flags, BPF_F_INNER_MAP);
		__uint(max_entries, 1);
		__type(key, __u32);
		__type(value, __u64);
	});
} tables SEC(".maps") = {
	.values = { [0] = (void *)&small, [3] = (void *)&big },
};

// A hash of maps with 8-byte keys, initialised in C (libbpf refuses non-4-byte keys here).
struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 8);
	__type(key, __u64);
	__array(values, struct sized);
} by_cookie SEC(".maps") = {
	.values = { [1] = &small, [5] = (void *)&big },
};

// Reads tables[slot][idx] for slot and idx given in the first bytes of the packet;
// returns the value + 1, or 0 when a lookup misses. A swap from user space changes it.
SEC("xdp")
int read_table(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 *req = data;
	if ((void *)(req + 2) > end)
		return 0;
	__u32 slot = req[0], idx = req[1];
	void *inner = bpf_map_lookup_elem(&tables, &slot);
	if (!inner)
		return 0;
	__u64 *v = bpf_map_lookup_elem(inner, &idx);
	if (!v)
		return 0;
	return (int)*v + 1;
}

// The same through the hash of maps with a 64-bit key.
SEC("xdp")
int read_cookie(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u64 *req = data;
	if ((void *)(req + 2) > end)
		return 0;
	__u64 cookie = req[0];
	__u32 idx = (__u32)req[1];
	void *inner = bpf_map_lookup_elem(&by_cookie, &cookie);
	if (!inner)
		return 0;
	__u64 *v = bpf_map_lookup_elem(inner, &idx);
	return v ? (int)*v + 1 : 0;
}

// Is there a devmap in outer_map[0]? (the seed's lookup helper)
SEC("xdp")
int has_devmap(struct xdp_md *ctx)
{
	__u32 key = 0;
	return bpf_map_lookup_elem(&outer_map, &key) ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
