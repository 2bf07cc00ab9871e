// A program array initialised in C (.values = { [i] = &prog }) and a tail call through it;
// also a bloom filter declared with map_extra.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

int answer_a(struct xdp_md *ctx);
int answer_b(struct xdp_md *ctx);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, int (void *));
} jump_table SEC(".maps") = {
	.values = { [1] = (void *)&answer_a, [3] = (void *)&answer_b },
};

struct {
	__uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
	__uint(max_entries, 64);
	__type(value, __u32);
	__uint(map_extra, 3);   // number of hash functions
} seen SEC(".maps");

SEC("xdp")
int answer_a(struct xdp_md *ctx)
{
	return 10;
}

SEC("xdp")
int answer_b(struct xdp_md *ctx)
{
	return 30;
}

// Jumps to jump_table[first byte of the packet]; returns 99 when the slot is empty.
SEC("xdp")
int dispatch(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u8 *slot = data;
	if ((void *)(slot + 1) > end)
		return 0;
	bpf_tail_call(ctx, &jump_table, *slot);
	return 99;
}

char LICENSE[] SEC("license") = "GPL";
