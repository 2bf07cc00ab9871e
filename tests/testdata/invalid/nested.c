// Invalid: an inner map that is itself a map-in-map (the kernel supports one level).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct leaf {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
};

struct middle {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct leaf);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct middle);
} outer SEC(".maps");

char LICENSE[] SEC("license") = "GPL";
