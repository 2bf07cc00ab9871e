// Invalid: an inner map definition asks to be pinned.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_ARRAY);
		__uint(max_entries, 1);
		__type(key, __u32);
		__type(value, __u32);
		__uint(pinning, LIBBPF_PIN_BY_NAME);
	});
} outer SEC(".maps");

char LICENSE[] SEC("license") = "GPL";
