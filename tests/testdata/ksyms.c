// A .ksyms extern (a kernel variable's address): purebpf refuses it, naming the symbol.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern const int bpf_prog_active __ksym;

__u64 out_address;

SEC("xdp")
int read_ksym(struct xdp_md *ctx)
{
	out_address = (__u64)&bpf_prog_active;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
