// A program that tries to replace a slot of an outer map: the verifier refuses it.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} spare SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct inner);
} outer SEC(".maps");

SEC("xdp")
int replace_slot(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u32 fd = 0;
	bpf_map_update_elem(&outer, &key, &fd, BPF_ANY);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
