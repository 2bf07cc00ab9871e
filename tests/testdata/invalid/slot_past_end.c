// Invalid: an array of maps initialised past its max_entries.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct leaf {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} only SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct leaf);
} outer SEC(".maps") = {
	.values = { [3] = &only },
};

char LICENSE[] SEC("license") = "GPL";
