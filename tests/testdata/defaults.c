// What libbpf-style objects leave to the loader: a perf event array without max_entries
// (one per CPU), a ring buffer size that is not a power of two, a program not loaded by
// default (SEC("?...")), a kprobe without a target, and long custom data sections.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 10000);
} ring SEC(".maps");

__u64 ingress_packets SEC(".data.counters_ingress") = 1;
__u64 egress_packets SEC(".data.counters_egress") = 2;
__u32 cache SEC(".data.rodata_cache") = 3;   // writable despite its name

SEC("xdp")
int count_ingress(struct xdp_md *ctx)
{
	ingress_packets++;
	return (int)(ingress_packets + egress_packets + cache);
}

SEC("?xdp")
int optional_prog(struct xdp_md *ctx)
{
	return 7;
}

SEC("kprobe")
int probe_anything(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
