// Invalid: a map value type that is only forward-declared.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct unknown;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct unknown);
} broken SEC(".maps");

char LICENSE[] SEC("license") = "GPL";
