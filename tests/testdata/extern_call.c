// A call to a function defined in no section of the object (and not a __ksym kfunc):
// refused at parse time naming the function.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern int helper_elsewhere(int x);

SEC("xdp")
int call_extern(struct xdp_md *ctx)
{
	return helper_elsewhere(2);
}

char LICENSE[] SEC("license") = "GPL";
