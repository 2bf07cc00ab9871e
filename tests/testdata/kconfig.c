// .kconfig externs: the loader fills them in (LINUX_* from the running kernel, CONFIG_*
// from its config), and the program copies them into .bss for the test to read.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <stdbool.h>

extern unsigned int LINUX_KERNEL_VERSION __kconfig;
extern bool LINUX_HAS_SYSCALL_WRAPPER __kconfig __weak;
extern bool LINUX_HAS_BPF_COOKIE __kconfig __weak;
extern enum libbpf_tristate CONFIG_BPF __kconfig;
extern bool CONFIG_BPF_SYSCALL __kconfig;
extern int CONFIG_HZ __kconfig;
extern unsigned short CONFIG_LOG_BUF_SHIFT __kconfig;
extern __u64 CONFIG_NR_CPUS __kconfig;
extern char CONFIG_DEFAULT_HOSTNAME[16] __kconfig __weak;
extern int CONFIG_PUREBPF_NOT_A_THING __kconfig __weak;

__u32 out_version;
__u32 out_syscall_wrapper;
__u32 out_bpf_cookie;
__u32 out_bpf;
__u32 out_bpf_syscall;
__s32 out_hz;
__u32 out_log_buf_shift;
__u64 out_nr_cpus;
char out_hostname[16];
__s32 out_not_a_thing = -1;

SEC("xdp")
int read_kconfig(struct xdp_md *ctx)
{
	out_version = LINUX_KERNEL_VERSION;
	out_syscall_wrapper = LINUX_HAS_SYSCALL_WRAPPER;
	out_bpf_cookie = LINUX_HAS_BPF_COOKIE;
	out_bpf = CONFIG_BPF;
	out_bpf_syscall = CONFIG_BPF_SYSCALL;
	out_hz = CONFIG_HZ;
	out_log_buf_shift = CONFIG_LOG_BUF_SHIFT;
	out_nr_cpus = CONFIG_NR_CPUS;
	for (int i = 0; i < sizeof(out_hostname); i++)
		out_hostname[i] = CONFIG_DEFAULT_HOSTNAME[i];
	out_not_a_thing = CONFIG_PUREBPF_NOT_A_THING;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
