// A strong (not __weak) .kconfig extern no kernel config defines: loading must fail naming it.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern int CONFIG_PUREBPF_MISSING __kconfig;

SEC("xdp")
int read_missing(struct xdp_md *ctx)
{
	return CONFIG_PUREBPF_MISSING ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
