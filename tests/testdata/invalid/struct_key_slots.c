// Invalid: declared slots in a hash of maps whose key is a struct (the slot index would
// become the key).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct key { __u32 a, b; };

struct leaf {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} only SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, struct key);
	__array(values, struct leaf);
} outer SEC(".maps") = {
	.values = { [1] = &only },
};

char LICENSE[] SEC("license") = "GPL";
