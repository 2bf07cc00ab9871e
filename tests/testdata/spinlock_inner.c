// Inner maps whose value holds a bpf_spin_lock: the kernel compares such special fields
// between the template and every inserted map, so inner maps need the template's BTF.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct locked {
	struct bpf_spin_lock lock;
	__u32 count;
};

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct locked);
} first SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct inner);
} counters SEC(".maps") = {
	.values = { [0] = &first },
};

// Counts under the lock of counters[slot][0]; returns the new count, 0 on a miss.
SEC("xdp")
int count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 *slot = data, zero = 0, n;
	if ((void *)(slot + 1) > end)
		return 0;
	void *inner = bpf_map_lookup_elem(&counters, slot);
	if (!inner)
		return 0;
	struct locked *v = bpf_map_lookup_elem(inner, &zero);
	if (!v)
		return 0;
	bpf_spin_lock(&v->lock);
	n = ++v->count;
	bpf_spin_unlock(&v->lock);
	return n;
}

char LICENSE[] SEC("license") = "GPL";
