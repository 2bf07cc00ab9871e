// cgroup hooks for tests/kernel/test_attach_cgroup.py: connect4 programs that count the
// connect() calls of processes in the test cgroup, one that refuses them (EPERM), and
// programs whose hook cannot be told from their section.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} connects SEC(".maps");

static void count(__u32 slot)
{
	__u64 *n = bpf_map_lookup_elem(&connects, &slot);

	if (n)
		__sync_fetch_and_add(n, 1);
}

SEC("cgroup/connect4")
int count_connect4(struct bpf_sock_addr *ctx)
{
	count(0);
	return 1;	// allow
}

// The same hook, counting in the other slot: tells which program the hook runs after update().
SEC("cgroup/connect4")
int other_connect4(struct bpf_sock_addr *ctx)
{
	count(1);
	return 1;
}

SEC("cgroup/connect4")
int deny_connect4(struct bpf_sock_addr *ctx)
{
	return 0;	// connect() fails with EPERM
}

SEC("cgroup/sock_create")
int sock_create(struct bpf_sock *ctx)
{
	return 1;
}

// "cgroup/skb" says neither ingress nor egress.
SEC("cgroup/skb")
int any_skb(struct __sk_buff *skb)
{
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
