// Global data (.data, .rodata, .bss, named sections, string literals), static and global
// subprograms, and a bpf_loop callback.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

volatile const __u32 multiplier = 3;           // .rodata: set before load, read-only after
volatile __u32 calls = 0;                      // .bss
volatile __u64 last_result = 7;                // .data
volatile __u32 tuned SEC(".data.tuning") = 11; // a named data section
const char greeting[] = "hello";                // .rodata

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} results SEC(".maps");

static __noinline __u64 scale(__u64 x)
{
	return x * multiplier + tuned;
}

__noinline int add_one(int x)
{
	return x + 1;
}

static long count_up(__u64 index, void *ctx)
{
	__u64 *sum = ctx;
	*sum += index;
	return 0;
}

SEC("xdp")
int compute(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 *in = data;
	if ((void *)(in + 1) > end)
		return 0;
	__u64 sum = 0;
	bpf_loop(4, count_up, &sum, 0);      // 0 + 1 + 2 + 3 = 6
	__u64 r = scale(*in) + sum + greeting[0] - 'h';
	calls++;
	last_result = r;
	__u32 k = 0;
	bpf_map_update_elem(&results, &k, &r, BPF_ANY);
	return add_one((int)r);
}

char LICENSE[] SEC("license") = "GPL";
