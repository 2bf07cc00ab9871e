// Maps keyed and valued by structs: Python sees dicts, lists and strings (BTF-decoded).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

enum verdict { PASS = 1, DROP = 2 };

struct flow {
	__u32 addr;
	__u16 port;
	__u8 proto;
	__u8 pad;
};

struct stats {
	__u64 packets;
	__u64 bytes;
	enum verdict last;
	char label[8];
	__u16 hist[4];
	__u32 small : 5, big : 27;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, struct flow);
	__type(value, struct stats);
} flows SEC(".maps");

// Counts the packet under the flow {addr = first word, port = 80, proto = 17}.
SEC("xdp")
int count_flow(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 *w = data;
	if ((void *)(w + 1) > end)
		return 0;
	struct flow f = { .addr = *w, .port = 80, .proto = 17 };
	struct stats *s = bpf_map_lookup_elem(&flows, &f);
	if (!s)
		return 0;
	s->packets++;
	s->bytes += end - data;
	s->last = PASS;
	return (int)s->packets;
}

char LICENSE[] SEC("license") = "GPL";
