// Socket and network-namespace hooks for tests/kernel/test_attach_sock.py: sk_msg and sk_skb
// programs for a sockmap, sk_lookup and flow_dissector programs for a netns. Each counting
// program adds one to its slot of 'hits' per run.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

static void count(__u32 slot)
{
	__u64 *n = bpf_map_lookup_elem(&hits, &slot);

	if (n)
		__sync_fetch_and_add(n, 1);
}

SEC("sk_msg")
int count_msg(struct sk_msg_md *msg)
{
	count(0);
	return SK_PASS;
}

SEC("sk_skb/verdict")
int count_skb(struct __sk_buff *skb)
{
	count(1);
	return SK_PASS;
}

SEC("sk_skb/stream_parser")
int parser(struct __sk_buff *skb)
{
	return skb->len;
}

SEC("sk_skb/stream_verdict")
int stream_verdict(struct __sk_buff *skb)
{
	return SK_PASS;
}

// "sk_skb" alone says neither parser nor verdict.
SEC("sk_skb")
int any_skb(struct __sk_buff *skb)
{
	return SK_PASS;
}

SEC("sk_lookup")
int count_lookup(struct bpf_sk_lookup *ctx)
{
	count(2);
	return SK_PASS;
}

SEC("sk_lookup")
int other_lookup(struct bpf_sk_lookup *ctx)
{
	count(3);
	return SK_PASS;
}

SEC("flow_dissector")
int dissect(struct __sk_buff *skb)
{
	return BPF_OK;
}

char LICENSE[] SEC("license") = "GPL";
